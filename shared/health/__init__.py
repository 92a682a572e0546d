"""Health: how each export's writes are going, what state it should be in, and what the customer reads.

- `rules`: how health is judged (pure): the policy, the tick between two checks, the state change,
  the causes' explanations and troubleshooting hints;
- `records`: what the health check remembers of each export (table `exporthealth`);
- `check`: the health check the timer runs: judge, postpone, probe, disable, expire and tend backlogs;
- `view`: the health view customers read.
"""
