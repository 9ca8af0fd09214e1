#!/usr/bin/env python3
"""The live `price` tool: the arguments on stdin, the SKU's price from a JSON file on stdout.

Edit prices.json to change "the world" and watch `--drift` report it.
"""

import json
import sys

arguments = json.load(sys.stdin)
prices = json.load(open(sys.argv[1]))
sku = arguments.get("sku")
if sku not in prices:
    print(f"unknown SKU {sku!r}", file=sys.stderr)
    sys.exit(1)
print(json.dumps({"sku": sku, "price": prices[sku], "currency": "EUR"}))
