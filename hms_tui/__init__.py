"""hms-tui: a terminal front desk for outpatient queues, on PostgreSQL."""

__version__ = "0.1.0"
