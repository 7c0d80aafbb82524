"""What `make package` built: one line per function of template.yaml with its bootstrap's size, the
size of the .zip SAM uploads, its architecture (file(1)) and the newest glibc symbol version it
needs (objdump -T). Fails when a bootstrap is not a 64-bit aarch64 ELF or needs glibc newer than
provided.al2023 has (2.34); warns when one is over the 8 MB size goal (docs/deploy.md).

Run with the .tools/sam interpreter (it parses the template with SAM's own YAML loader):
    .tools/sam/bin/python localstack/package-report.py [BUILD_DIR] [TEMPLATE]
"""

import io
import os
import re
import shutil
import subprocess
import sys
import zipfile

from samcli.yamlhelper import yaml_parse

MAX_GLIBC = (2, 34)  # glibc of Amazon Linux 2023, the provided.al2023 runtime
SIZE_GOAL = 8 * 1000 * 1000


def glibc_versions(path):
    """Every GLIBC_x.y version the binary's dynamic symbols ask for."""
    if shutil.which("objdump"):
        text = subprocess.run(
            ["objdump", "-T", path], check=True, capture_output=True, text=True
        ).stdout
    else:  # the version names sit in .dynstr anyway
        with open(path, "rb") as f:
            text = f.read().decode("latin-1")
    found = {tuple(int(p) for p in m.split(".")) for m in re.findall(r"GLIBC_(\d+\.\d+(?:\.\d+)?)", text)}
    return sorted(found)


def zipped_size(path):
    """Size of the deployment package: bootstrap alone, deflated (as `sam deploy` zips it)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(path, "bootstrap")
    return len(buffer.getvalue())


def describe(path):
    if shutil.which("file"):
        return subprocess.run(["file", "-b", path], check=True, capture_output=True, text=True).stdout.strip()
    return ""


def is_aarch64_elf64(path):
    with open(path, "rb") as f:
        header = f.read(20)
    # ELF magic, EI_CLASS 2 (64-bit), EI_DATA 1 (little endian), e_machine 183 (EM_AARCH64)
    return header[:4] == b"\x7fELF" and header[4] == 2 and header[5] == 1 and int.from_bytes(header[18:20], "little") == 183


def mb(size):
    return f"{size / 1_000_000:.2f} MB"


def main():
    build_dir = sys.argv[1] if len(sys.argv) > 1 else "target/sam/build"
    template_path = sys.argv[2] if len(sys.argv) > 2 else "template.yaml"
    with open(template_path) as f:
        template = yaml_parse(f.read())
    functions = [
        (logical_id, resource.get("Metadata", {}).get("BuildProperties", {}).get("Binary", logical_id))
        for logical_id, resource in template["Resources"].items()
        if resource.get("Type") == "AWS::Serverless::Function"
    ]
    problems, over_goal = [], []
    total, total_zipped = 0, 0
    print(f"{'function':<16} {'bootstrap':>10} {'zipped':>10}  {'glibc':<6} file")
    for logical_id, binary in sorted(functions, key=lambda f: f[1]):
        path = os.path.join(build_dir, logical_id, "bootstrap")
        if not os.path.isfile(path):
            problems.append(f"{binary}: {path} is missing")
            continue
        size, zipped = os.path.getsize(path), zipped_size(path)
        total, total_zipped = total + size, total_zipped + zipped
        versions = glibc_versions(path)
        newest = versions[-1] if versions else ()
        newest_text = ".".join(map(str, newest)) or "none"
        print(f"{binary:<16} {mb(size):>10} {mb(zipped):>10}  {newest_text:<6} {describe(path)}")
        if not is_aarch64_elf64(path):
            problems.append(f"{binary}: not a 64-bit little-endian aarch64 ELF")
        if newest > MAX_GLIBC:
            problems.append(f"{binary}: needs GLIBC_{newest_text}, provided.al2023 has 2.34")
        if size > SIZE_GOAL:
            over_goal.append(binary)
    print(f"{'all ' + str(len(functions)):<16} {mb(total):>10} {mb(total_zipped):>10}")
    if over_goal:
        print(f"warning: over the {mb(SIZE_GOAL)} goal: {', '.join(over_goal)}")
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
