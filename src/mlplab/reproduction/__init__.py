"""Reproduction: the tutorials' published numbers (`published`), training the tutorials
against them (`tutorials`), and re-running any logged run (`rerun`)."""
