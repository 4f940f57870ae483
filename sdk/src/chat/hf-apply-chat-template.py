"""Renders chat templates as Hugging Face's apply_chat_template does (transformers' _compile_jinja_template):
Jinja2's ImmutableSandboxedEnvironment with trim_blocks and lstrip_blocks, the loopcontrols extension, and HF's
raise_exception, tojson (json.dumps, no HTML escaping) and strftime_now. Reads a JSON list of cases on stdin, each
{template, variables}; writes a JSON list of {text} or {error}."""
import json
import sys
from datetime import datetime

import jinja2
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def strftime_now(format):
    return datetime.now().strftime(format)


def render(case):
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    try:
        return {"text": env.from_string(case["template"]).render(**case["variables"])}
    except Exception as error:  # a template's raise_exception, or a value it cannot handle
        return {"error": f"{type(error).__name__}: {error}"}


json.dump([render(case) for case in json.load(sys.stdin)], sys.stdout, ensure_ascii=False)
