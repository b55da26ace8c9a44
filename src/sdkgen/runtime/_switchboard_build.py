"""PEP 517 build backend of the Switchboard Python client: standard library only.

The client is pure Python with no dependencies, so its wheel is a zip of the ``switchboard_client``
folder (and ``agenticrag_client``, the agent-builder SDK's name for it) plus the ``.dist-info`` files. Living in the project (``backend-path``) and requiring
nothing, it lets ``pip install ./clients/python`` work without reaching PyPI for setuptools.
"""
import base64
import hashlib
import io
import os
import tarfile
import zipfile

NAME = "switchboard_client"
#: The packages the wheel holds: the client, and the alias that names it as the agent-builder SDK.
PACKAGES = (NAME, "agenticrag_client")
DIST = "switchboard-client"
HERE = os.path.dirname(os.path.abspath(__file__))


def _version():
    with open(os.path.join(HERE, "pyproject.toml"), encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("version = "):
                return line.split("=", 1)[1].strip().strip('"')
    raise RuntimeError("pyproject.toml has no version")


def _metadata(version):
    with open(os.path.join(HERE, "README.md"), encoding="utf-8") as handle:
        readme = handle.read()
    return (
        "Metadata-Version: 2.1\n"
        f"Name: {DIST}\n"
        f"Version: {version}\n"
        "Summary: Python client of the Switchboard HTTP API (sync and asyncio), standard library only\n"
        "License: Apache-2.0\n"
        "Requires-Python: >=3.9\n"
        "Description-Content-Type: text/markdown\n"
        "\n" + readme
    )


def _package_files():
    for package in PACKAGES:
        root = os.path.join(HERE, package)
        for name in sorted(os.listdir(root)):
            if name.endswith(".py") or name == "py.typed":
                yield f"{package}/{name}", os.path.join(root, name)


def _record_line(path, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode("ascii")
    return f"{path},sha256={digest},{len(data)}\n"


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    version = _version()
    info = f"{NAME}-{version}.dist-info"
    filename = f"{NAME}-{version}-py3-none-any.whl"
    record = ""
    with zipfile.ZipFile(os.path.join(wheel_directory, filename), "w", zipfile.ZIP_DEFLATED) as wheel:
        entries = []
        for arcname, path in _package_files():
            with open(path, "rb") as handle:
                entries.append((arcname, handle.read()))
        entries.append((f"{info}/METADATA", _metadata(version).encode("utf-8")))
        entries.append((f"{info}/WHEEL", b"Wheel-Version: 1.0\nGenerator: switchboard-build\nRoot-Is-Purelib: true\nTag: py3-none-any\n"))
        for arcname, data in entries:
            wheel.writestr(arcname, data)
            record += _record_line(arcname, data)
        record += f"{info}/RECORD,,\n"
        wheel.writestr(f"{info}/RECORD", record)
    return filename


def build_sdist(sdist_directory, config_settings=None):
    version = _version()
    base = f"{NAME}-{version}"
    filename = f"{base}.tar.gz"
    with tarfile.open(os.path.join(sdist_directory, filename), "w:gz") as sdist:
        for name in ("pyproject.toml", "README.md", "_switchboard_build.py"):
            sdist.add(os.path.join(HERE, name), f"{base}/{name}")
        for arcname, path in _package_files():
            sdist.add(path, f"{base}/{arcname}")
        data = _metadata(version).encode("utf-8")
        item = tarfile.TarInfo(f"{base}/PKG-INFO")
        item.size = len(data)
        sdist.addfile(item, io.BytesIO(data))
    return filename
