"""Let pip inside an image build reach packages the way this machine's pip does, naming no host.

    python docker/pip_build_config.py OUT_PIP_CONF

reads this machine's pip settings (``pip config list``: its files and PIP_* variables), writes them as one
pip.conf to OUT_PIP_CONF and prints, one a line, the ``-v`` options of ``buildah bud`` that mount that file
at /etc/pip.conf and, read-only at the same place, every local file or folder the settings name (a CA bundle,
a constraints file, wheel folders, ``file://`` indexes). A setting that names nothing local travels as it is.
"""

import configparser
import subprocess
import sys
from pathlib import Path

ENV_SECTION = ':env:'


def pip_settings(python: str = sys.executable) -> dict[str, dict[str, str]]:
    """``{section: {key: value}}`` of pip's effective configuration; PIP_* variables count as ``global``."""
    listing = subprocess.run([python, '-m', 'pip', 'config', 'list'], capture_output=True, text=True,
                             check=True).stdout
    return parse_config_list(listing)


def parse_config_list(listing: str) -> dict[str, dict[str, str]]:
    """Parse ``section.key='value'`` lines; variables (``:env:.key``) override the files' ``global`` values."""
    settings: dict[str, dict[str, str]] = {}
    variables: dict[str, str] = {}
    for line in listing.splitlines():
        name, _, quoted = line.partition('=')
        section, _, key = name.rpartition('.')
        value = quoted.strip().strip("'\"")
        if section == ENV_SECTION:
            variables[key] = value
        elif section and key:
            settings.setdefault(section, {})[key] = value
    settings.setdefault('global', {}).update(variables)
    return settings


def local_paths(settings: dict[str, dict[str, str]]) -> list[Path]:
    """The existing local paths the values name; a ``file://.../simple`` index brings its parent folder,
    where its pages link the wheels."""
    paths = []
    for values in settings.values():
        for word in ' '.join(values.values()).split():
            path = Path(word.removeprefix('file://'))
            if word.startswith('file://') and path.name == 'simple':
                path = path.parent
            if path.is_absolute() and path.exists() and path not in paths:
                paths.append(path)
    return paths


def write_pip_conf(settings: dict[str, dict[str, str]], out: Path) -> None:
    config = configparser.ConfigParser(interpolation=None)
    config.read_dict(settings)
    with open(out, 'w') as file:
        config.write(file)


def volume_options(settings: dict[str, dict[str, str]], pip_conf: Path) -> list[str]:
    options = ['-v', f'{pip_conf.resolve()}:/etc/pip.conf:ro']
    for path in local_paths(settings):
        options += ['-v', f'{path}:{path}:ro']
    return options


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit('usage: pip_build_config.py OUT_PIP_CONF')
    settings = pip_settings()
    out = Path(sys.argv[1])
    write_pip_conf(settings, out)
    print('\n'.join(volume_options(settings, out)))


if __name__ == '__main__':
    main()
