"""UI-free services beside the desk: token slips, printing and spoken calls.

Nothing here imports Textual, so the CLI, the screens and the tests share the same code.
"""
