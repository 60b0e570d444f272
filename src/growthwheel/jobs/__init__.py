"""The worker: everything that runs on a schedule, with leases, retries and a record of each run;
and the outbox through which every outgoing effect is delivered once.

- ``models``: ``job_schedules``, ``job_runs``, ``outbox`` in the operational store;
- ``outbox``: the channel protocol, :func:`outbox.enqueue` (in the decider's transaction) and the
  delivery loop (leases, backoff, dead letters, replay);
- ``scheduler``: claiming due schedules under a lease, running them, recording runs and retries;
- ``registry`` and ``tasks``: the jobs that exist (points expiry, tier review, birthday coupons,
  group-buy and bargain expiry with refunds, referral settlement, segment refreshes, reviews);
- ``worker``: the loop behind ``growthwheel worker``; ``cli``, ``pages``, ``internal``: its faces.
"""
