"""Scheduled duties inside the hub: the daily AP2T batch and its deadline, the retention
purge, the SLA report and the SMS cost export, each once per cluster per WIB day.

- `schedule`: pure calculation (the next run time from the settings, the WIB day a run
  covers, the retry back-off); no clock, no I/O.
- `clock`: the runner's injectable clock (the system's, or a manual one tests advance).
- `runner`: runs each duty at its time on one worker of the cluster, retries a failure
  with back-off and raises an alarm after `alarm_after` failures.
- `jobs`: the duties themselves, thin calls into the code the `pintar` commands use.

Nothing is imported here: settings.py imports `schedule` (standard library only) and must
not pull the store in with it.
"""
