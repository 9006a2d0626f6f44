"""Rule files (tags.yaml, scoring.yaml, routing.yaml, ...) and their safe expressions.

- `load`: YAML with the file:line:col of every key, value and item (YDict/YList),
  character offsets inside string values, `rules_hash`.
- `expr`: the expression language, checked against a whitelist and compiled to SQL
  (`expr_parse` reads and checks the text, `expr_compile` checks types and builds SQL).
- `located`: problems and expressions with their file:line:col (`RuleDoc`,
  `compile_located`, `Fields` with the names declared but broken), shared by every rule
  file's parser; `hints`: the did-you-mean of every "unknown X" message.
- `tags`, `scoring`, `routing`: rule objects compiled to SQL on top of these.

Nothing is imported here, so importing one rules module stays cheap.
"""
