"""The kernel: the domain's types and rules (messages, the plan and its calendar, roster rows,
word count, hours, digest figures) in plain Python. It imports nothing of the project above it."""
