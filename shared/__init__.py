"""signals-export's core: everything that is not a binding (see function_app.py)."""
