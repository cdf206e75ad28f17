"""Reading a corpus: files and their markup, the page settings, passages."""
