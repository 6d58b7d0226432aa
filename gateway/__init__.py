"""SMS transport: AT-command modems, the modem pool, PDUs, SMSC links and the durable spool."""
