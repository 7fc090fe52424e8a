"""The `lensdb` command line: parse, call one library function, print with rich."""
