#!/usr/bin/env python3
"""Checks the Redox cookbook files under recipes/ (Python 3.11+, standard library only).

Every *.toml, *.service and *.target file must parse as TOML and use only the keys the
Redox build system and init accept (cookbook src/recipe.rs, installer src/config,
init src/unit.rs and src/service.rs, 2026-08). Every path a file names must exist:

- a recipe's `[source] path` is resolved the way the cookbook does, against the root
  of the Redox checkout, where recipes/README.md tells you to put this repository as
  REDOX_SUBDIR; without --redox-root that checkout is simulated, so
  "ramfs-9p/<x>" means <this repository>/<x>;
- `cargopath`, `COOKBOOK_CARGO_PATH=` and `${COOKBOOK_SOURCE}/...` in build scripts,
  under that source;
- `cargopackages` must be packages of the workspace there;
- a service's `cmd` and a config's symlink targets must be files a recipe here
  installs (`cp`/`mv` into `${COOKBOOK_STAGE}` in its script), and its `type =
  { scheme = NAME }` must match the `--scheme NAME` it passes;
- `requires_weak` units that are not Redox's must be services here;
- a config fragment's packages must be recipes here, its includes must exist.

Usage: python3 recipes/check.py [--redox-root DIR]
Exit status 0 when everything holds, 1 with one line per problem otherwise.
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

RECIPES_DIR = Path(__file__).resolve().parent
REPO_ROOT = RECIPES_DIR.parent
# Where README.md tells you to put this repository inside a Redox checkout.
REDOX_SUBDIR = "ramfs-9p"

RECIPE_KEYS = {"source", "build", "package", "optional-packages"}
SOURCE_KINDS = {
    "path": {"path"},
    "git": {"git", "upstream", "branch", "rev", "shallow_clone", "patches", "script"},
    "tar": {"tar", "blake3", "patches", "script"},
    "same_as": {"same_as"},
}
BUILD_KEYS_COMMON = {"template", "dependencies", "dev-dependencies"}
BUILD_TEMPLATES = {
    "none": set(),
    "remote": set(),
    "cargo": {"cargopath", "cargoflags", "cargopackages", "cargoexamples", "clearlocked",
              "cargopackagesprefixed"},
    "configure": {"configureflags"},
    "cmake": {"cmakeflags"},
    "meson": {"mesonflags"},
    "python": {"pyprojectpath", "pipflags", "legacysetup"},
    "custom": {"script"},
}
PACKAGE_KEYS = {"dependencies", "version", "description"}

CONFIG_KEYS = {"include", "general", "packages", "files", "users", "groups"}
FILE_KEYS = {"path", "data", "symlink", "directory", "mode", "uid", "gid",
             "recursive_chown", "postinstall", "append"}

UNIT_KEYS = {"description", "default_dependencies", "requires_weak",
             "condition_architecture", "condition_board"}
SERVICE_KEYS = {"cmd", "args", "envs", "inherit_envs", "type", "priority"}
SERVICE_TYPES = {"notify", "oneshot", "oneshot_async"}
# Units that Redox's base package provides; anything else must be defined here.
REDOX_UNIT = re.compile(r"^\d\d_[A-Za-z0-9_.@-]+$")


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)

    def add(self, path: Path, message: str) -> None:
        self.problems.append(f"{path.relative_to(REPO_ROOT)}: {message}")


@dataclass
class Recipe:
    name: str
    file: Path
    data: dict
    source_dir: Path | None = None
    installs: set[str] = field(default_factory=set)


def load_toml(path: Path, report: Report) -> dict | None:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        report.add(path, f"not valid TOML: {e}")
    except OSError as e:
        report.add(path, f"cannot read: {e}")
    return None


def unknown_keys(table: dict, allowed: set[str], where: str, path: Path, report: Report) -> None:
    for key in sorted(set(table) - allowed):
        report.add(path, f"unknown key '{key}' in {where} (allowed: {', '.join(sorted(allowed))})")


def resolve_source_path(value: str, redox_root: Path | None) -> Path | None:
    """Where the cookbook would find `[source] path = value`."""
    if redox_root is not None:
        return (redox_root / value).resolve()
    parts = Path(value).parts
    if Path(value).is_absolute() or not parts or parts[0] != REDOX_SUBDIR:
        return None
    return REPO_ROOT.joinpath(*parts[1:]).resolve()


def workspace_packages(cargo_dir: Path, report: Report) -> set[str]:
    """Package names of the Cargo workspace (or single package) at cargo_dir."""
    manifest = load_toml(cargo_dir / "Cargo.toml", report)
    if manifest is None:
        return set()
    names = set()
    if "package" in manifest:
        names.add(manifest["package"].get("name", ""))
    for member in manifest.get("workspace", {}).get("members", []):
        member_manifest = load_toml(cargo_dir / member / "Cargo.toml", report)
        if member_manifest and "package" in member_manifest:
            names.add(member_manifest["package"].get("name", ""))
    return names


def script_installs(script: str) -> set[str]:
    """Absolute paths that `cp`/`mv` lines of a build script put into the stage."""
    installs: set[str] = set()
    stage = "${COOKBOOK_STAGE}"
    for line in script.splitlines():
        try:
            words = shlex.split(line)
        except ValueError:
            continue
        if not words or words[0] not in ("cp", "mv"):
            continue
        args = [w for w in words[1:] if not w.startswith("-")]
        if len(args) != 2 or not args[1].startswith(stage):
            continue
        src, dest = args
        dest = dest[len(stage):]
        if dest.endswith("/"):
            dest += Path(src).name
        if words[0] == "mv" and src.startswith(stage):
            installs.discard(src[len(stage):])
        installs.add(dest)
    return installs


def check_recipe(path: Path, data: dict, redox_root: Path | None, report: Report) -> Recipe:
    recipe = Recipe(name=path.parent.name, file=path, data=data)
    unknown_keys(data, RECIPE_KEYS, "the recipe", path, report)

    source = data.get("source")
    if source is not None:
        kinds = [k for k in SOURCE_KINDS if k in source]
        if len(kinds) != 1:
            report.add(path, f"[source] needs exactly one of {', '.join(SOURCE_KINDS)}")
        else:
            unknown_keys(source, SOURCE_KINDS[kinds[0]], "[source]", path, report)
            if kinds[0] == "path":
                resolved = resolve_source_path(source["path"], redox_root)
                if resolved is None:
                    report.add(path, f"[source] path '{source['path']}' is not "
                                     f"'{REDOX_SUBDIR}/...' (this repository inside the Redox checkout)")
                elif not resolved.is_dir():
                    report.add(path, f"[source] path '{source['path']}' -> {resolved} is not a directory")
                else:
                    recipe.source_dir = resolved
            elif kinds[0] == "same_as" and not (path.parent / source["same_as"]).is_dir():
                report.add(path, f"[source] same_as '{source['same_as']}' does not exist")

    build = data.get("build", {})
    template = build.get("template", "none")
    if template not in BUILD_TEMPLATES:
        report.add(path, f"[build] template '{template}' is not one of {', '.join(BUILD_TEMPLATES)}")
    else:
        unknown_keys(build, BUILD_KEYS_COMMON | BUILD_TEMPLATES[template], "[build]", path, report)
    if template == "custom" and not isinstance(build.get("script"), str):
        report.add(path, "[build] template 'custom' needs a script")
    unknown_keys(data.get("package", {}), PACKAGE_KEYS, "[package]", path, report)

    src = recipe.source_dir
    if src is not None and template == "cargo":
        cargo_dir = src / build.get("cargopath", ".")
        if not (cargo_dir / "Cargo.toml").is_file():
            report.add(path, f"cargopath '{build.get('cargopath', '.')}' has no Cargo.toml under the source")
        elif build.get("cargopackages"):
            known = workspace_packages(src, report) | workspace_packages(cargo_dir, report)
            for package in build["cargopackages"]:
                if package not in known:
                    report.add(path, f"cargopackages names '{package}', not a package of {cargo_dir}")
    if template == "custom":
        recipe.installs = script_installs(build.get("script", ""))
    if src is not None and template == "custom":
        script = build.get("script", "")
        for cargo_path in re.findall(r"COOKBOOK_CARGO_PATH=(\S+)", script):
            if not (src / cargo_path / "Cargo.toml").is_file():
                report.add(path, f"script sets COOKBOOK_CARGO_PATH={cargo_path}, which has no Cargo.toml")
        for rel in re.findall(r"\$\{COOKBOOK_SOURCE\}/([^\s\"']+)", script):
            if not (src / rel).exists():
                report.add(path, f"script uses ${{COOKBOOK_SOURCE}}/{rel}, which does not exist")
    return recipe


def check_service(path: Path, data: dict, installed: set[str], units_here: set[str],
                  report: Report) -> None:
    is_target = path.suffix == ".target"
    allowed = {"unit"} if is_target else {"unit", "service"}
    unknown_keys(data, allowed, "the unit file", path, report)
    unit = data.get("unit")
    if not isinstance(unit, dict):
        report.add(path, "missing [unit]")
    else:
        unknown_keys(unit, UNIT_KEYS, "[unit]", path, report)
        for dep in unit.get("requires_weak", []):
            if dep not in units_here and not REDOX_UNIT.match(dep):
                report.add(path, f"requires_weak '{dep}' is neither a unit here nor a Redox unit name")
    if is_target:
        return
    service = data.get("service")
    if not isinstance(service, dict):
        report.add(path, "missing [service]")
        return
    unknown_keys(service, SERVICE_KEYS, "[service]", path, report)
    cmd = service.get("cmd")
    if not isinstance(cmd, str):
        report.add(path, "[service] needs cmd")
    elif f"/usr/bin/{cmd}" not in installed:
        report.add(path, f"cmd '{cmd}' is not installed into /usr/bin by any recipe here")
    kind = service.get("type")
    args = service.get("args", [])
    if isinstance(kind, dict):
        if set(kind) != {"scheme"} or not isinstance(kind["scheme"], str):
            report.add(path, "type table must be { scheme = \"NAME\" }")
        elif "--scheme" in args:
            i = args.index("--scheme")
            given = args[i + 1] if i + 1 < len(args) else None
            if given != kind["scheme"]:
                report.add(path, f"type registers scheme '{kind['scheme']}' but args say --scheme {given}")
    elif kind not in SERVICE_TYPES:
        report.add(path, f"type must be one of {', '.join(sorted(SERVICE_TYPES))} or {{ scheme = \"NAME\" }}")


def check_config(path: Path, data: dict, recipes: dict[str, Recipe], installed: set[str],
                 report: Report) -> None:
    unknown_keys(data, CONFIG_KEYS, "the config", path, report)
    for include in data.get("include", []):
        if not (path.parent / include).is_file():
            report.add(path, f"include '{include}' does not exist")
    for package in data.get("packages", {}):
        if package not in recipes:
            report.add(path, f"package '{package}' has no recipe in {RECIPES_DIR.name}/")
    for entry in data.get("files", []):
        unknown_keys(entry, FILE_KEYS, "[[files]]", path, report)
        if "path" not in entry or "data" not in entry:
            report.add(path, "[[files]] entry needs path and data")
            continue
        if entry.get("symlink") and entry["data"].startswith("/") and entry["data"] not in installed:
            report.add(path, f"symlink {entry['path']} -> {entry['data']}: no recipe here installs that file")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redox-root", type=Path,
                        help="a Redox checkout to resolve [source] path against for real")
    args = parser.parse_args()
    redox_root = args.redox_root.resolve() if args.redox_root else None

    report = Report()
    files = sorted(p for p in RECIPES_DIR.rglob("*")
                   if p.suffix in (".toml", ".service", ".target") and p.is_file()
                   and "source" not in p.relative_to(RECIPES_DIR).parts)
    parsed = {p: d for p in files if (d := load_toml(p, report)) is not None}

    recipes = {p.parent.name: check_recipe(p, d, redox_root, report)
               for p, d in parsed.items() if p.name == "recipe.toml"}
    installed = set().union(*(r.installs for r in recipes.values())) if recipes else set()
    units_here = {p.name for p in parsed if p.suffix in (".service", ".target")}
    for p, d in parsed.items():
        if p.suffix in (".service", ".target"):
            check_service(p, d, installed, units_here, report)
        elif p.name != "recipe.toml":
            check_config(p, d, recipes, installed, report)

    if not recipes:
        report.problems.append(f"{RECIPES_DIR.name}/: no recipe.toml found")
    for problem in report.problems:
        print(f"recipes/check.py: {problem}", file=sys.stderr)
    if report.problems:
        print(f"recipes/check.py: {len(report.problems)} problem(s) in {len(files)} file(s)",
              file=sys.stderr)
        return 1
    print(f"recipes/check.py: {len(files)} file(s), {len(recipes)} recipe(s) ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
