"""A simulated two-way prepaid meter: STS decoder rules, credit register, household load."""
