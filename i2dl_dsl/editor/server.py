"""`i2dl-lsp`: the language server, over standard input and output.

A thin layer: each request is answered by the editor modules (hover,
completion, navigation, inlay, actions, format) from what the checker
found (`workspace`); this file only speaks the protocol. Every open
document is checked on open and on each change, and the documents that
`use` it are checked again with it.
"""

from __future__ import annotations

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from .. import __version__
from ..diagnostics import CompileError
from . import actions, completion, format, hover, inlay, navigation
from .convert import to_lsp, to_range, uri_of
from .workspace import Workspace, identity

_ITEM_KINDS = {"layer": lsp.CompletionItemKind.Function, "block": lsp.CompletionItemKind.Class,
               "tensor": lsp.CompletionItemKind.Variable, "argument": lsp.CompletionItemKind.Property,
               "setting": lsp.CompletionItemKind.Property, "value": lsp.CompletionItemKind.EnumMember,
               "keyword": lsp.CompletionItemKind.Keyword}
_SYMBOL_KINDS = {"network": lsp.SymbolKind.Class, "block": lsp.SymbolKind.Function, "train": lsp.SymbolKind.Object,
                 "label": lsp.SymbolKind.Field, "tensor": lsp.SymbolKind.Variable, "input": lsp.SymbolKind.Variable}


class NetServer(LanguageServer):
    """The server and its documents."""

    def __init__(self) -> None:
        super().__init__("i2dl-lsp", __version__, text_document_sync_kind=lsp.TextDocumentSyncKind.Incremental)
        self.files = Workspace()
        self.inlay_hints = True

    def check(self, uri: str) -> None:
        """Check a document and those that read it; publish their diagnostics."""
        path = to_fs_path(uri)
        document = self.workspace.get_text_document(uri)
        snapshot = self.files.open(path, document.source, document.version)
        self._publish(uri, snapshot)
        for other in self.files.dependents(path):
            self._publish(uri_of(other), self.files.check(other, self.files.snapshot(other).version))

    def _publish(self, uri: str, snapshot) -> None:
        diagnostics = [to_lsp(d, snapshot.path) for d in snapshot.diagnostics]
        self.text_document_publish_diagnostics(
            lsp.PublishDiagnosticsParams(uri=uri, diagnostics=diagnostics, version=snapshot.version))

    def snapshot(self, uri: str):
        """The latest check of a document, or the latest that parsed when
        the current text does not."""
        key = identity(to_fs_path(uri))
        current = self.files.snapshots.get(key)
        if current is not None and current.module is None:
            return self.files.good.get(key)
        return current


server = NetServer()


@server.feature(lsp.INITIALIZE)
def _initialize(ls: NetServer, params: lsp.InitializeParams) -> None:
    options = params.initialization_options or {}
    if isinstance(options, dict):
        ls.inlay_hints = bool(options.get("inlayHints", True))


@server.feature(lsp.INITIALIZED)
def _initialized(ls: NetServer, params: lsp.InitializedParams) -> None:
    """Ask the client to report changes of .net files on disk, where it can
    (VS Code's extension asks for them itself)."""
    watched = ls.client_capabilities.workspace and ls.client_capabilities.workspace.did_change_watched_files
    if watched and watched.dynamic_registration:
        options = lsp.DidChangeWatchedFilesRegistrationOptions(watchers=[lsp.FileSystemWatcher(glob_pattern="**/*.net")])
        ls.client_register_capability(lsp.RegistrationParams(registrations=[lsp.Registration(
            id="i2dl-net-files", method=lsp.WORKSPACE_DID_CHANGE_WATCHED_FILES, register_options=options)]))


@server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
def _did_open(ls: NetServer, params: lsp.DidOpenTextDocumentParams) -> None:
    ls.check(params.text_document.uri)


@server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
def _did_change(ls: NetServer, params: lsp.DidChangeTextDocumentParams) -> None:
    ls.check(params.text_document.uri)


@server.feature(lsp.TEXT_DOCUMENT_DID_SAVE)
def _did_save(ls: NetServer, params: lsp.DidSaveTextDocumentParams) -> None:
    ls.check(params.text_document.uri)


@server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
def _did_close(ls: NetServer, params: lsp.DidCloseTextDocumentParams) -> None:
    ls.files.close(to_fs_path(params.text_document.uri))
    ls.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri=params.text_document.uri, diagnostics=[]))


@server.feature(lsp.WORKSPACE_DID_CHANGE_WATCHED_FILES)
def _files_changed(ls: NetServer, params: lsp.DidChangeWatchedFilesParams) -> None:
    """A file changed on disk (not open): the documents that read it are checked again."""
    for change in params.changes:
        path = to_fs_path(change.uri)
        ls.files.forget(path)
        for other in ls.files.dependents(path):
            ls._publish(uri_of(other), ls.files.check(other, ls.files.snapshot(other).version))


@server.feature(lsp.TEXT_DOCUMENT_HOVER)
def _hover(ls: NetServer, params: lsp.HoverParams) -> lsp.Hover | None:
    snapshot = ls.snapshot(params.text_document.uri)
    found = snapshot and hover.hover_text(snapshot, params.position.line, params.position.character)
    if not found:
        return None
    text, target = found
    return lsp.Hover(lsp.MarkupContent(lsp.MarkupKind.Markdown, text), to_range(target.span))


@server.feature(lsp.TEXT_DOCUMENT_COMPLETION, lsp.CompletionOptions(trigger_characters=[">", "(", ","]))
def _completion(ls: NetServer, params: lsp.CompletionParams) -> lsp.CompletionList:
    text = ls.workspace.get_text_document(params.text_document.uri).source
    items = completion.complete(ls.snapshot(params.text_document.uri), text, params.position.line,
                                params.position.character)
    return lsp.CompletionList(is_incomplete=False, items=[
        lsp.CompletionItem(label=i.label, kind=_ITEM_KINDS.get(i.kind), detail=i.detail or None,
                           documentation=i.doc or None, insert_text=i.insert or None) for i in items])


@server.feature(lsp.TEXT_DOCUMENT_DEFINITION)
def _definition(ls: NetServer, params: lsp.DefinitionParams) -> lsp.Location | None:
    snapshot = ls.snapshot(params.text_document.uri)
    span = snapshot and navigation.definition(snapshot, params.position.line, params.position.character)
    return lsp.Location(uri_of(span.path), to_range(span)) if span else None


@server.feature(lsp.TEXT_DOCUMENT_REFERENCES)
def _references(ls: NetServer, params: lsp.ReferenceParams) -> list[lsp.Location]:
    snapshot = ls.snapshot(params.text_document.uri)
    if snapshot is None:
        return []
    spans = navigation.references(snapshot, params.position.line, params.position.character,
                                  params.context.include_declaration)
    return [lsp.Location(uri_of(s.path), to_range(s)) for s in spans]


@server.feature(lsp.TEXT_DOCUMENT_RENAME)
def _rename(ls: NetServer, params: lsp.RenameParams) -> lsp.WorkspaceEdit | None:
    snapshot = ls.snapshot(params.text_document.uri)
    spans = snapshot and navigation.rename(snapshot, params.position.line, params.position.character,
                                           params.new_name)
    if not spans:
        return None
    changes: dict[str, list[lsp.TextEdit]] = {}
    for span in spans:
        changes.setdefault(uri_of(span.path), []).append(lsp.TextEdit(to_range(span), params.new_name))
    return lsp.WorkspaceEdit(changes=changes)


@server.feature(lsp.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
def _symbols(ls: NetServer, params: lsp.DocumentSymbolParams) -> list[lsp.DocumentSymbol]:
    snapshot = ls.snapshot(params.text_document.uri)
    if snapshot is None or snapshot.module is None:
        return []

    def convert(s: navigation.Symbol) -> lsp.DocumentSymbol:
        return lsp.DocumentSymbol(name=s.name, kind=_SYMBOL_KINDS[s.kind], range=to_range(s.span),
                                  selection_range=to_range(s.name_span), children=[convert(c) for c in s.children])
    return [convert(s) for s in navigation.symbols(snapshot.module)]


@server.feature(lsp.TEXT_DOCUMENT_INLAY_HINT)
def _inlay(ls: NetServer, params: lsp.InlayHintParams) -> list[lsp.InlayHint]:
    snapshot = ls.files.snapshot(to_fs_path(params.text_document.uri))
    if not ls.inlay_hints or snapshot is None:
        return []
    return [lsp.InlayHint(lsp.Position(h.line, h.character), h.label, kind=lsp.InlayHintKind.Type)
            for h in inlay.shape_hints(snapshot)]


@server.feature(lsp.TEXT_DOCUMENT_CODE_ACTION)
def _code_actions(ls: NetServer, params: lsp.CodeActionParams) -> list[lsp.CodeAction]:
    text = ls.workspace.get_text_document(params.text_document.uri).source
    out = []
    for diagnostic in params.context.diagnostics:
        hints = (diagnostic.data or {}).get("hints", []) if isinstance(diagnostic.data, dict) else []
        r = diagnostic.range
        for fix in actions.fixes(text, r.start.line, r.start.character, r.end.line, r.end.character, hints):
            edit = lsp.TextEdit(lsp.Range(lsp.Position(fix.line, fix.start), lsp.Position(fix.line, fix.end)),
                                fix.new_text)
            out.append(lsp.CodeAction(title=fix.title, kind=lsp.CodeActionKind.QuickFix, diagnostics=[diagnostic],
                                      is_preferred=True,
                                      edit=lsp.WorkspaceEdit(changes={params.text_document.uri: [edit]})))
    return out


@server.feature(lsp.TEXT_DOCUMENT_FORMATTING)
def _formatting(ls: NetServer, params: lsp.DocumentFormattingParams) -> list[lsp.TextEdit] | None:
    document = ls.workspace.get_text_document(params.text_document.uri)
    try:
        formatted = format.format_text(document.source, to_fs_path(params.text_document.uri))
    except CompileError:
        return None  # a file with a syntax error is not reformatted; its diagnostics say why
    if formatted == document.source:
        return []
    end = lsp.Position(len(document.lines), 0)
    return [lsp.TextEdit(lsp.Range(lsp.Position(0, 0), end), formatted)]


def main() -> None:
    """Entry point of `i2dl-lsp`: serve one editor over stdio."""
    server.start_io()
