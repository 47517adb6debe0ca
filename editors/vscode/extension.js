// Starts i2dl-lsp for .net files: checks, hover, completion, navigation,
// inlay hints and formatting all come from the server.
const vscode = require("vscode");
const { LanguageClient } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const config = vscode.workspace.getConfiguration("i2dl");
  const [command, ...args] = config.get("server.command", ["i2dl-lsp"]);
  const serverOptions = { command, args };
  const clientOptions = {
    documentSelector: [{ scheme: "file", language: "net" }],
    initializationOptions: { inlayHints: config.get("inlayHints", true) },
    synchronize: { fileEvents: vscode.workspace.createFileSystemWatcher("**/*.net") },
  };
  client = new LanguageClient("i2dl", "i2dl language server", serverOptions, clientOptions);
  context.subscriptions.push(client);
  return client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
