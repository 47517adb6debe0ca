// Tokenises .net files with VS Code's own TextMate engine (vscode-textmate
// and vscode-oniguruma: `npm install` here) and prints, as JSON, every
// token of each file: [file, line, start, end, scopes]. tests/test_highlighting.py
// runs it where node and these modules are present.
const fs = require("fs");
const path = require("path");
const vsctm = require("vscode-textmate");
const oniguruma = require("vscode-oniguruma");

const wasm = fs.readFileSync(path.join(path.dirname(require.resolve("vscode-oniguruma")), "onig.wasm"));
const onigLib = oniguruma.loadWASM(wasm.buffer).then(() => ({
  createOnigScanner: (patterns) => new oniguruma.OnigScanner(patterns),
  createOnigString: (s) => new oniguruma.OnigString(s),
}));
const grammarFile = path.join(__dirname, "..", "syntaxes", "net.tmLanguage.json");
const registry = new vsctm.Registry({
  onigLib,
  loadGrammar: async () => vsctm.parseRawGrammar(fs.readFileSync(grammarFile, "utf8"), grammarFile),
});

registry.loadGrammar("source.net").then((grammar) => {
  const out = [];
  for (const file of process.argv.slice(2)) {
    let state = vsctm.INITIAL;
    fs.readFileSync(file, "utf8").split("\n").forEach((line, number) => {
      const result = grammar.tokenizeLine(line, state);
      for (const t of result.tokens) out.push([file, number, t.startIndex, t.endIndex, t.scopes]);
      state = result.ruleStack;
    });
  }
  process.stdout.write(JSON.stringify(out));
});
