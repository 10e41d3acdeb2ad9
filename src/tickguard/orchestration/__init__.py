"""Prefect at the edge: flows, supervision, liveness, automations and ``tickguard up``.

The flows here wire plain functions (``run_collector``, ``Persist``) with explicit
arguments; the decisions that make supervision safe are plain, tested functions too:

* :mod:`.gate` — may a collector run now, and until when (XKRX calendar or an override);
* :mod:`.budget` — the restart budget (N restarts in M minutes, growing delay, one escalation);
* :mod:`.liveness` — the data-plane signal (frames/s, last trade time) as Prefect events;
* :mod:`.automations` — the automation definitions in ``deployments/automations`` applied by name;
* :mod:`.server`, :mod:`.worker`, :mod:`.deploy`, :mod:`.up` — the one-command stack.

Nothing outside this package imports Prefect.
"""
