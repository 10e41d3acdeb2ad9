"""``tickguard drill``: simulator + collector + persist + PostgreSQL, judged by ground truth.

Every later issue measures itself with a drill: add a scenario to
:data:`tickguard.drill.scenarios.SCENARIOS` (data, not code) and a key to the report.
"""
