"""Writes the Terraform module's inputs and outputs tables from its variables.tf and outputs.tf.

Usage: .venv-tools/bin/python scripts/infra-docs.py [--check]

Each table goes between marker comments, the rest of the file is left as it is:

    <!-- BEGIN GENERATED: inputs -->  ...  <!-- END GENERATED: inputs -->
    <!-- BEGIN GENERATED: outputs --> ...  <!-- END GENERATED: outputs -->

infra/modules/backstop/README.md gets the full tables (name, description, type, default,
required; name, description) and the version constraints of versions.tf (between
`requirements` markers), infra/README.md a short form (name, the description's first sentence,
the default with an object's attribute defaults filled in; name and description). With --check nothing is written: it exits 1, naming the first file that
differs from what it would write, for CI (scripts/infra-check.sh).

The blocks are found with hcl2 (bc-python-hcl2, installed with checkov into .venv-tools);
their `type`, `default` and `description` are read from the source by the small parser below,
because hcl2 returns a type as a Python repr of its parts and leaves strings escaped.
"""

import json
import re
import sys
from pathlib import Path

import hcl2

ROOT = Path(__file__).resolve().parent.parent
MODULE = ROOT / "infra/modules/backstop"
MODULE_README = MODULE / "README.md"
INFRA_README = ROOT / "infra/README.md"


class ParseError(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# Tokens
# ---------------------------------------------------------------------------------------------

PUNCTUATION_2 = ("==", "!=", "<=", ">=", "&&", "||", "=>", "...")
PUNCTUATION_1 = "{}[]()=,:?!<>+-*/%.&|"


def tokenize(text):
    """HCL tokens: (kind, value, line). Kinds: nl, ident, number, string, punct.

    A string's value is its text unescaped; a template (`${...}`) is kept as written.
    """
    tokens = []
    i, line, n = 0, 1, len(text)
    while i < n:
        c = text[i]
        if c == "\n":
            tokens.append(("nl", "\n", line))
            line += 1
            i += 1
        elif c in " \t\r":
            i += 1
        elif c == "#" or text.startswith("//", i):
            while i < n and text[i] != "\n":
                i += 1
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                raise ParseError(f"line {line}: unterminated /* comment")
            line += text.count("\n", i, end)
            i = end + 2
        elif c == '"':
            end, value = read_string(text, i, line)
            tokens.append(("string", value, line))
            line += text.count("\n", i, end)
            i = end
        elif text.startswith("<<", i) and re.match(r"<<-?[A-Za-z_]", text[i:]):
            m = re.match(r"<<(-?)([A-Za-z_][A-Za-z0-9_]*)[ \t]*\n", text[i:])
            if not m:
                raise ParseError(f"line {line}: a heredoc marker must end its line")
            body_start = i + m.end()
            closing = re.compile(rf"^[ \t]*{m.group(2)}[ \t]*$", re.M)
            close = closing.search(text, body_start)
            if not close:
                raise ParseError(f"line {line}: heredoc {m.group(2)} is never closed")
            body = text[body_start : close.start()]
            if m.group(1):  # <<- strips the smallest indentation
                lines = body.split("\n")
                indents = [len(l) - len(l.lstrip()) for l in lines if l.strip()]
                cut = min(indents, default=0)
                body = "\n".join(l[cut:] for l in lines)
            tokens.append(("string", body.rstrip("\n"), line))
            line += text.count("\n", i, close.end())
            i = close.end()
        elif c.isdigit():
            m = re.match(r"\d+(\.\d+)?([eE][+-]?\d+)?", text[i:])
            tokens.append(("number", m.group(0), line))
            i += m.end()
        elif c.isalpha() or c == "_":
            m = re.match(r"[A-Za-z_][A-Za-z0-9_-]*", text[i:])
            tokens.append(("ident", m.group(0), line))
            i += m.end()
        else:
            two = next((p for p in PUNCTUATION_2 if text.startswith(p, i)), None)
            if two:
                tokens.append(("punct", two, line))
                i += len(two)
            elif c in PUNCTUATION_1:
                tokens.append(("punct", c, line))
                i += 1
            else:
                raise ParseError(f"line {line}: unexpected character {c!r}")
    return tokens


ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}


def read_string(text, start, line):
    """Reads the quoted string at text[start]; returns (end, value)."""
    i, out, template = start + 1, [], False
    while i < len(text):
        c = text[i]
        if c == '"':
            value = "".join(out)
            return i + 1, (text[start : i + 1] if template else value)
        if c == "\n":
            raise ParseError(f"line {line}: a quoted string cannot span lines")
        if c == "\\":
            e = text[i + 1 : i + 2]
            if e in ESCAPES:
                out.append(ESCAPES[e])
                i += 2
            elif e == "u":
                out.append(chr(int(text[i + 2 : i + 6], 16)))
                i += 6
            elif e == "U":
                out.append(chr(int(text[i + 2 : i + 10], 16)))
                i += 10
            else:
                raise ParseError(f"line {line}: unknown escape \\{e}")
        elif text.startswith("$${", i) or text.startswith("%%{", i):
            out.append(text[i + 1 : i + 3])
            i += 3
        elif text.startswith("${", i) or text.startswith("%{", i):
            template = True
            i = skip_template(text, i + 2, line)
        else:
            out.append(c)
            i += 1
    raise ParseError(f"line {line}: unterminated string")


def skip_template(text, i, line):
    """Skips a template's expression up to and past its closing brace."""
    depth = 1
    while i < len(text):
        c = text[i]
        if c == '"':
            i, _ = read_string(text, i, line)
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise ParseError(f"line {line}: unterminated template")


# ---------------------------------------------------------------------------------------------
# Blocks and the expressions of types and literal values
# ---------------------------------------------------------------------------------------------


def blocks(tokens, kind):
    """Top-level `kind "label" { ... }` blocks: {label: {attribute: [tokens]}}, in order."""
    found, i, depth = {}, 0, 0
    while i < len(tokens):
        k, v, _ = tokens[i]
        if depth == 0 and k == "ident" and v == kind and i + 2 < len(tokens) and tokens[i + 1][0] == "string":
            label = tokens[i + 1][1]
            if tokens[i + 2][1] != "{":
                raise ParseError(f"line {tokens[i][2]}: {kind} {label!r} has no body")
            found[label], i = attributes(tokens, i + 3)
            continue
        if k == "punct" and v in "{[(":
            depth += 1
        elif k == "punct" and v in "}])":
            depth -= 1
        i += 1
    return found


def attributes(tokens, i):
    """The `name = expression` attributes of the body starting at tokens[i] (nested blocks are
    skipped); returns them and the index after the body's closing brace."""
    attrs, depth, start = {}, 0, True
    while i < len(tokens):
        k, v, _ = tokens[i]
        if depth == 0 and start and k == "ident" and i + 1 < len(tokens) and tokens[i + 1][1] == "=":
            j, inner = i + 2, 0
            while j < len(tokens) and not (inner == 0 and tokens[j][0] == "nl"):
                if tokens[j][1] in ("{", "[", "(") and tokens[j][0] == "punct":
                    inner += 1
                elif tokens[j][1] in ("}", "]", ")") and tokens[j][0] == "punct":
                    inner -= 1
                    if inner < 0:  # `{ a = 1 }` on one line: the body's own brace
                        break
                j += 1
            attrs[v] = tokens[i + 2 : j]
            i = j
            continue
        if k == "punct" and v in "{[(":
            depth += 1
        elif k == "punct" and v in "}])":
            if depth == 0:
                return attrs, i + 1
            depth -= 1
        start = k == "nl"
        i += 1
    raise ParseError("a block is never closed")


class Call:
    """A type constructor or function call: name(args)."""

    def __init__(self, name, args):
        self.name, self.args = name, args


class Ref:
    """A bare identifier: a primitive type (string, number, bool, any) or a reference."""

    def __init__(self, name):
        self.name = name


class Parser:
    def __init__(self, tokens):
        self.tokens = [t for t in tokens if t[0] != "nl"]
        self.i = 0

    def peek(self):
        return self.tokens[self.i] if self.i < len(self.tokens) else ("eof", "", 0)

    def take(self, value=None):
        token = self.peek()
        if token[0] == "eof" or (value is not None and token[1] != value):
            raise ParseError(f"line {token[2]}: expected {value or 'an expression'}, found {token[1]!r}")
        self.i += 1
        return token

    def parse(self):
        value = self.expression()
        if self.peek()[0] != "eof":
            token = self.peek()
            raise ParseError(f"line {token[2]}: an expression the docs cannot render: {token[1]!r}")
        return value

    def expression(self):
        kind, value, line = self.take()
        if kind == "string":
            return value
        if kind == "number":
            return float(value) if re.search(r"[.eE]", value) else int(value)
        if kind == "punct" and value == "-" and self.peek()[0] == "number":
            return -self.expression()
        if kind == "ident":
            if value in ("true", "false"):
                return value == "true"
            if value == "null":
                return None
            if self.peek()[1] == "(":
                self.take("(")
                args = []
                while self.peek()[1] != ")":
                    args.append(self.expression())
                    if self.peek()[1] == ",":
                        self.take(",")
                self.take(")")
                return Call(value, args)
            return Ref(value)
        if value == "[":
            items = []
            while self.peek()[1] != "]":
                items.append(self.expression())
                if self.peek()[1] == ",":
                    self.take(",")
            self.take("]")
            return items
        if value == "{":
            entries = {}
            while self.peek()[1] != "}":
                key_kind, key, _ = self.take()
                if key_kind not in ("ident", "string"):
                    raise ParseError(f"line {line}: an object key must be a name or a string")
                if self.peek()[1] not in ("=", ":"):
                    raise ParseError(f"line {line}: expected = after {key}")
                self.take()
                entries[key] = self.expression()
                if self.peek()[1] == ",":
                    self.take(",")
            self.take("}")
            return entries
        raise ParseError(f"line {line}: an expression the docs cannot render: {value!r}")


def parse(tokens):
    return Parser(tokens).parse()


# ---------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def hcl(value):
    """A literal value as compact HCL."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(hcl(v) for v in value) + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        keys = (k if IDENTIFIER.match(k) else json.dumps(k) for k in value)
        return "{ " + ", ".join(f"{k} = {hcl(v)}" for k, v in zip(keys, value.values())) + " }"
    if isinstance(value, Ref):
        return value.name
    raise ParseError(f"a default the docs cannot render: {value!r}")


def type_text(t):
    """A type, compactly: an object lists its attribute names, with `= value` for an optional
    attribute's default and the shape of an attribute that is itself an object or collection."""
    if isinstance(t, Ref):
        return t.name
    if isinstance(t, Call) and t.name == "object" and len(t.args) == 1 and isinstance(t.args[0], dict):
        return "object({" + ", ".join(attribute_text(k, a) for k, a in t.args[0].items()) + "})"
    if isinstance(t, Call) and t.name == "optional":
        return type_text(t.args[0])
    if isinstance(t, Call) and t.name == "tuple" and len(t.args) == 1 and isinstance(t.args[0], list):
        return "tuple([" + ", ".join(type_text(a) for a in t.args[0]) + "])"
    if isinstance(t, Call) and len(t.args) == 1:
        return f"{t.name}({type_text(t.args[0])})"
    raise ParseError("a type the docs cannot render")


def attribute_text(name, t):
    inner = t.args[0] if isinstance(t, Call) and t.name == "optional" else t
    default = t.args[1] if isinstance(t, Call) and t.name == "optional" and len(t.args) > 1 else None
    if isinstance(inner, Call) and has_object(inner):
        return f"{name} = {type_text(inner)}"
    if default is not None:
        return f"{name} = {hcl(default)}"
    return name


def effective(t, value):
    """A default as the module sees it: an object's optional attributes with their defaults
    filled in (and the ones left null dropped), as Terraform converts it to the type."""
    if value is None or not isinstance(t, Call):
        return value
    if t.name == "optional":
        return effective(t.args[0], value)
    if t.name == "object" and isinstance(value, dict) and t.args and isinstance(t.args[0], dict):
        result = {}
        for name, attribute in t.args[0].items():
            if name in value:
                result[name] = effective(attribute, value[name])
            elif isinstance(attribute, Call) and attribute.name == "optional" and len(attribute.args) > 1:
                result[name] = effective(attribute.args[0], attribute.args[1])
        return {k: v for k, v in result.items() if v is not None}
    if t.name == "map" and isinstance(value, dict):
        return {k: effective(t.args[0], v) for k, v in value.items()}
    if t.name in ("list", "set") and isinstance(value, list):
        return [effective(t.args[0], v) for v in value]
    return value


def has_object(t):
    if isinstance(t, Call):
        return t.name == "object" or any(has_object(a) for a in t.args if isinstance(a, (Call, Ref)))
    return False


def code(text):
    """Inline code for a table cell: pipes escaped, fenced past any backticks inside."""
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{cell(text)}{pad}{fence}"


def cell(text):
    """Text for a table cell: pipes escaped, line breaks as <br>."""
    text = text.strip().replace("|", "\\|")
    return re.sub(r"\r?\n", "<br>", text)


def prose(text):
    """A description for a table cell: outside its `code` spans, what Markdown would take for
    HTML or emphasis (<this>, */verification/, _backstop) is escaped."""
    parts = re.split(r"(`+[^`]*`+)", text)
    for i in range(0, len(parts), 2):
        part = parts[i].replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        part = part.replace("*", "\\*")
        parts[i] = re.sub(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])", r"\\_", part)
    return cell("".join(parts))


def first_sentence(text):
    """The description up to its first full stop outside parentheses (not e.g./i.e.)."""
    depth = 0
    for i, c in enumerate(text):
        if c in "([":
            depth += 1
        elif c in ")]":
            depth = max(0, depth - 1)
        elif c == "." and depth == 0 and (i + 1 == len(text) or text[i + 1] in " \n"):
            if re.search(r"\b(e\.g|i\.e|etc)$", text[:i]):
                continue
            return text[: i + 1]
    return text


def summary(text, longest=160):
    """The first sentence; a long one up to its first colon outside parentheses."""
    sentence = first_sentence(text)
    if len(sentence) <= longest:
        return sentence
    depth = 0
    for i, c in enumerate(sentence):
        if c in "([":
            depth += 1
        elif c in ")]":
            depth = max(0, depth - 1)
        elif c == ":" and depth == 0 and sentence[i + 1 : i + 2] == " ":
            return sentence[:i] + "."
    return sentence


# ---------------------------------------------------------------------------------------------
# The module
# ---------------------------------------------------------------------------------------------


def read_blocks(path, kind):
    text = path.read_text()
    names = [label for block in hcl2.loads(text).get(kind, []) for label in block]
    found = blocks(tokenize(text), kind)
    if names != list(found):
        raise ParseError(f"{path}: hcl2 found {kind} blocks {names}, the docs parser {list(found)}")
    result = []
    for name, attrs in found.items():
        try:
            entry = {"name": name, "description": parse(attrs["description"]) if "description" in attrs else ""}
            if kind == "variable":
                t = parse(attrs["type"]) if "type" in attrs else Ref("any")
                entry["type"] = type_text(t)
                entry["required"] = "default" not in attrs
                if not entry["required"]:
                    default = parse(attrs["default"])
                    entry["default"] = hcl(default)
                    entry["effective_default"] = hcl(effective(t, default))
            entry["sensitive"] = "sensitive" in attrs and parse(attrs["sensitive"]) is True
        except ParseError as e:
            raise ParseError(f"{path}: {kind} {name!r}: {e}") from e
        if not isinstance(entry["description"], str):
            raise ParseError(f"{path}: {kind} {name!r}: the description is not a string")
        result.append(entry)
    return result


def read_requirements(path):
    """Terraform's and the providers' version constraints, from the `terraform` block."""
    tokens = tokenize(path.read_text())
    found = []
    for i, (kind, value, _) in enumerate(tokens):
        if kind == "ident" and value == "terraform" and tokens[i + 1][1] == "{" and (i == 0 or tokens[i - 1][0] == "nl"):
            attrs, _ = attributes(tokens, i + 2)
            if "required_version" in attrs:
                found.append({"name": "terraform", "source": "", "version": parse(attrs["required_version"])})
        if kind == "ident" and value == "required_providers" and tokens[i + 1][1] == "{":
            providers, _ = attributes(tokens, i + 2)
            for name, expression in providers.items():
                provider = parse(expression)
                if isinstance(provider, str):
                    provider = {"version": provider}
                found.append({"name": name, "source": provider.get("source", ""), "version": provider.get("version", "")})
    if not found:
        raise ParseError(f"{path}: no terraform block with required_version or required_providers")
    return found


def tables(variables, outputs, requirements):
    full_inputs = [
        "The type column is compact: an object lists its attributes, with `= value` for an optional",
        "attribute's default; `variables.tf` has the exact types and the validation rules.",
        "",
        "| Name | Description | Type | Default | Required |",
        "|------|-------------|------|---------|:--------:|",
    ] + [
        f"| <a name=\"input_{v['name']}\"></a> `{v['name']}` | {prose(v['description'])} | {code(v['type'])} | "
        f"{'n/a' if v['required'] else code(v['default'])} | {'yes' if v['required'] else 'no'} |"
        for v in variables
    ]
    full_outputs = [
        "| Name | Description |",
        "|------|-------------|",
    ] + [
        f"| <a name=\"output_{o['name']}\"></a> `{o['name']}` | {prose(o['description'])}"
        f"{' (sensitive)' if o['sensitive'] else ''} |"
        for o in outputs
    ]
    short_inputs = [
        "| Name | Description | Default |",
        "|------|-------------|---------|",
    ] + [
        f"| [`{v['name']}`](modules/backstop/README.md#input_{v['name']}) | {prose(summary(v['description']))} | "
        f"{'required' if v['required'] else code(v['effective_default'])} |"
        for v in variables
    ]
    short_outputs = [
        "| Name | Description |",
        "|------|-------------|",
    ] + [
        f"| [`{o['name']}`](modules/backstop/README.md#output_{o['name']}) | {prose(summary(o['description']))} |"
        for o in outputs
    ]
    requirement_lines = [
        "| Name | Source | Version |",
        "|------|--------|---------|",
    ] + [f"| {r['name']} | {r['source'] or 'n/a'} | `{r['version']}` |" for r in requirements]
    return {
        MODULE_README: {"requirements": requirement_lines, "inputs": full_inputs, "outputs": full_outputs},
        INFRA_README: {"inputs": short_inputs, "outputs": short_outputs},
    }


def replace_sections(path, text, sections):
    for name, lines in sections.items():
        begin, end = f"<!-- BEGIN GENERATED: {name} -->", f"<!-- END GENERATED: {name} -->"
        if text.count(begin) != 1 or text.count(end) != 1 or text.index(begin) > text.index(end):
            raise ParseError(f"{path.relative_to(ROOT)}: needs one {begin} ... {end} pair")
        head, rest = text.split(begin)
        _, tail = rest.split(end)
        text = head + begin + "\n" + "\n".join(lines) + "\n" + end + tail
    return text


def main(argv):
    check = argv == ["--check"]
    if argv and not check:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    try:
        variables = read_blocks(MODULE / "variables.tf", "variable")
        outputs = read_blocks(MODULE / "outputs.tf", "output")
        requirements = read_requirements(MODULE / "versions.tf")
        for path, sections in tables(variables, outputs, requirements).items():
            current = path.read_text()
            wanted = replace_sections(path, current, sections)
            if current == wanted:
                continue
            if check:
                print(
                    f"infra-docs: {path.relative_to(ROOT)} is out of date with the module's variables.tf,"
                    " outputs.tf or versions.tf: run scripts/infra-docs.py (with .venv-tools/bin/python)"
                    " and commit the result",
                    file=sys.stderr,
                )
                return 1
            path.write_text(wanted)
            print(f"infra-docs: wrote {path.relative_to(ROOT)}")
    except (ParseError, OSError) as e:
        print(f"infra-docs: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
