"""The read-only web dashboard: its routes (dashboard.py), what each page shows (views.py) and
the signed links that open it (links.py)."""
