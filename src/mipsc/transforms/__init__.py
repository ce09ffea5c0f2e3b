"""One ModulePass per file, each file named after its pass flag."""
