"""Directives whose text is computed at build time, so that the docs cannot drift from the code.

- ``cli <command>``: the options of a command, as a table from its argument parser, plus its ``--help``.
- ``http-endpoints``: a table of the HTTP proxy's endpoints, from its OpenAPI document.
- ``example <file>``: an example script's docstring and its source.
"""

import ast
import contextlib
import io
from pathlib import Path

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective

REPO = Path(__file__).resolve().parents[2]


def command_parsers() -> dict:
    from bert_serving.server import get_args_parser, get_benchmark_parser, get_shutdown_parser
    from bert_serving.server.finetune.args import get_average_parser, get_finetune_parser
    return {'bert-serving-start': get_args_parser, 'bert-serving-benchmark': get_benchmark_parser,
            'bert-serving-terminate': get_shutdown_parser, 'bert-serving-finetune': get_finetune_parser,
            'bert-serving-average-checkpoints': get_average_parser}


def help_text(command: str) -> str:
    """What ``command --help`` prints (the prepare-model parser lives inside its main())."""
    if command == 'bert-serving-prepare-model':
        from bert_serving.server.model.packaged import main
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
            main(['--help'])
        return out.getvalue()
    return command_parsers()[command]().format_help()


class MarkdownDirective(SphinxDirective):
    """A directive that writes Markdown and lets MyST render it in place."""

    def markdown(self) -> str:
        raise NotImplementedError

    def run(self) -> list:
        container = nodes.container()
        self.state.nested_parse(StringList(self.markdown().splitlines(), source=self.get_source_info()[0]),
                                self.content_offset, container)
        return container.children


class CliDirective(MarkdownDirective):
    required_arguments = 1

    def markdown(self) -> str:
        from bert_serving.server.args import options_table

        command = self.arguments[0]
        parts = []
        if command in command_parsers():
            parts.append(options_table(command_parsers()[command]()))
        parts.append(f'`{command} --help` prints:\n\n```text\n{help_text(command).rstrip()}\n```')
        return '\n\n'.join(parts)


class HttpEndpointsDirective(MarkdownDirective):
    def markdown(self) -> str:
        from bert_serving.server.http import HttpConfig, openapi_document

        rows = ['| method | path | what it does |', '|---|---|---|']
        for path, methods in openapi_document(HttpConfig(http_port=8125))['paths'].items():
            for method, operation in methods.items():
                rows.append(f'| {method.upper()} | `{path}` | {operation["summary"]} |')
        return '\n'.join(rows)


class ExampleDirective(MarkdownDirective):
    required_arguments = 1

    def markdown(self) -> str:
        path = REPO / 'example' / self.arguments[0]
        self.env.note_dependency(str(path))
        docstring = ast.get_docstring(ast.parse(path.read_text(encoding='utf-8')))
        # A leading / is the docs folder to Sphinx.
        return (f'{docstring}\n\n```{{literalinclude}} /../example/{path.name}\n:language: python\n'
                f':lines: {source_start(path)}-\n```')


def source_start(path: Path) -> int:
    """The first non-blank line after the module docstring."""
    lines = path.read_text(encoding='utf-8').splitlines()
    number = ast.parse('\n'.join(lines)).body[0].end_lineno + 1
    while not lines[number - 1].strip():
        number += 1
    return number


def setup(app):
    app.add_directive('cli', CliDirective)
    app.add_directive('http-endpoints', HttpEndpointsDirective)
    app.add_directive('example', ExampleDirective)
    return {'parallel_read_safe': True, 'version': '1'}
