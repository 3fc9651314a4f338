"""Every write of the domain happens here; views, tasks and commands call these."""
