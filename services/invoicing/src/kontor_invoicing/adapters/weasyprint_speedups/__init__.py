"""Speed-ups for WeasyPrint 70: patches of its internals used by the invoice renderer (adapters/pdf.py)."""
