"""The evening ``daily-report``: what the day stored, what it lost, what it quarantined."""
