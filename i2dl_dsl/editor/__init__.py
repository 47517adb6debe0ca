"""The checker in the editor: a language server (`server`, over the
checker's own spans and diagnostics: `workspace`, `convert`, `locate`,
`hover`, `completion`, `navigation`, `inlay`, `actions`), the formatter
(`format`, `layout`, on the lexer's tokens: `tokens`), and highlighting
(`textmate` writes the VS Code grammar; `lexer` is the Pygments lexer).
Nothing here parses .net text but the checker's own parser and lexer."""
