#!/usr/bin/env python3
"""chat_render.py - the reference chat-template renderer: Python's jinja2,
configured the way Hugging Face transformers configures it (see
$ECH_SHARED/templates/README.md).  Same options as ech-template:

  chat_render.py --template FILE|--gguf FILE --messages FILE [--tools FILE]
                 [--no-generation-prompt] [--bos TEXT] [--eos TEXT]
                 [--var KEY=JSON]...

Prints the prompt exactly (UTF-8, no added newline).  When the template
raises, prints "error: MESSAGE" on stderr and exits 1.  strftime_now uses
SOURCE_DATE_EPOCH (UTC) when it is set, so renders can be reproduced.
With --gguf the template and the BOS/EOS texts come from the model (read by
gguf_check.py's independent reader); --bos/--eos override them.
"""
import argparse
import datetime
import json
import os
import sys

import jinja2
from jinja2 import nodes
from jinja2.ext import Extension
from jinja2.sandbox import ImmutableSandboxedEnvironment


class GenerationBlock(Extension):
    """{% generation %}...{% endgeneration %}: transformers' AssistantTracker,
    minus the tracking; the body renders as a call block."""
    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        call = self.call_method("_generation_support")
        return nodes.CallBlock(call, [], [], body).set_lineno(lineno)

    @jinja2.pass_eval_context
    def _generation_support(self, context, caller):
        return caller()


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent,
                      separators=separators, sort_keys=sort_keys)


def strftime_now(fmt):
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch:
        now = datetime.datetime.fromtimestamp(int(epoch), tz=datetime.timezone.utc)
    else:
        now = datetime.datetime.now()
    return now.strftime(fmt)


def render(argv):
    """Render once for the options in argv; returns (exit code, output bytes, error text)."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--template")
    ap.add_argument("--gguf")
    ap.add_argument("--messages", required=True)
    ap.add_argument("--tools")
    ap.add_argument("--no-generation-prompt", action="store_true")
    ap.add_argument("--bos")
    ap.add_argument("--eos")
    ap.add_argument("--var", action="append", default=[])
    a = ap.parse_args(argv)

    bos = eos = ""
    if a.gguf:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from gguf_check import read_gguf
        meta = {k: v for k, _, v in read_gguf(a.gguf)[1]}
        source = meta["tokenizer.chat_template"]
        toks = meta.get("tokenizer.ggml.tokens", {}).get("items", [])
        bid, eid = meta.get("tokenizer.ggml.bos_token_id"), meta.get("tokenizer.ggml.eos_token_id")
        bos = toks[bid] if bid is not None and bid < len(toks) else ""
        eos = toks[eid] if eid is not None and eid < len(toks) else ""
    else:
        with open(a.template, encoding="utf-8") as f:
            source = f.read()
    if a.bos is not None:
        bos = a.bos
    if a.eos is not None:
        eos = a.eos
    with open(a.messages, encoding="utf-8") as f:
        messages = json.load(f)
    ctx = {"messages": messages, "add_generation_prompt": not a.no_generation_prompt,
           "bos_token": bos, "eos_token": eos}
    if a.tools:
        with open(a.tools, encoding="utf-8") as f:
            ctx["tools"] = json.load(f)
    for kv in a.var:
        k, _, v = kv.partition("=")
        ctx[k] = json.loads(v)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[GenerationBlock, jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    try:
        out = env.from_string(source).render(**ctx)
    except Exception as e:  # jinja2 errors, and Python errors a template provokes
        return 1, b"", "error: %s\n" % str(e).replace("\n", " ")
    return 0, out.encode("utf-8", "surrogatepass"), ""


def main():
    # --batch FILE: one job a line, "PREFIX<TAB>ARG<TAB>ARG...": writes
    # PREFIX.want, PREFIX.want-err and PREFIX.want-rc (one process for all)
    if len(sys.argv) == 3 and sys.argv[1] == "--batch":
        with open(sys.argv[2], encoding="utf-8") as jobs:
            for line in jobs:
                prefix, *argv = line.rstrip("\n").split("\t")
                rc, out, err = render(argv)
                with open(prefix + ".want", "wb") as f:
                    f.write(out)
                with open(prefix + ".want-err", "w", encoding="utf-8") as f:
                    f.write(err)
                with open(prefix + ".want-rc", "w") as f:
                    f.write("%d\n" % rc)
        return 0
    rc, out, err = render(sys.argv[1:])
    sys.stdout.buffer.write(out)
    sys.stderr.write(err)
    return rc


if __name__ == "__main__":
    sys.exit(main())
