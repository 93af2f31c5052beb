"""Rating guidelines: admin-edited markdown shown to raters."""
