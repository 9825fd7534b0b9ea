#!/usr/bin/env python3
"""Writes small MaxMind-format databases with known networks, for the
enrichment tests: a City-shaped one (GeoLite2-City layout) and an ASN-shaped
one (GeoLite2-ASN layout), with PyPI's mmdb-writer.

    make_mmdb.py OUT_DIR [--variant 2]

writes OUT_DIR/city.mmdb and OUT_DIR/asn.mmdb. Variant 2 moves 81.2.69.0/24
from London to Manchester and renames its AS, so that a test can tell a
reloaded database from the first one. Every expectation of the tests is
written here (see NETWORKS); nothing is downloaded.
"""

import os
import sys

from mmdb_writer import MMDBWriter, MmdbU32
from netaddr import IPSet

# network, ISO code, country (English), city or None, AS number, AS organisation
NETWORKS = [
    ("81.2.69.0/24", "GB", "United Kingdom", "London", 20712, "Andrews & Arnold Ltd"),
    ("89.160.20.0/24", "SE", "Sweden", "Linköping", 29518, "Bredband2 AB"),
    ("193.0.0.0/21", "NL", "Netherlands", None, 3333, "Reseaux IP Europeens Network Coordination Centre (RIPE NCC)"),
    ("2003::/19", "DE", "Germany", "Berlin", 3320, "Deutsche Telekom AG"),
    ("91.0.0.0/10", "DE", "Germany", "Frankfurt am Main", 3320, "Deutsche Telekom AG"),
]
# In the ASN database only: an address with an AS but no country.
ASN_ONLY = [("1.1.1.0/24", 13335, "Cloudflare, Inc.")]


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    variant = 2 if sys.argv[2:] == ["--variant", "2"] else 1
    os.makedirs(out, exist_ok=True)
    city = MMDBWriter(
        ip_version=6,
        ipv4_compatible=True,
        database_type="GeoLite2-City",
        languages=["en"],
        description="HoneyBee test city database",
    )
    asn = MMDBWriter(
        ip_version=6,
        ipv4_compatible=True,
        database_type="GeoLite2-ASN",
        languages=["en"],
        description="HoneyBee test ASN database",
    )
    for net, iso, country, town, number, org in NETWORKS:
        if variant == 2 and net == "81.2.69.0/24":
            town, org = "Manchester", "Andrews & Arnold Ltd (reloaded)"
        record = {"country": {"iso_code": iso, "names": {"en": country, "de": country}}}
        if town:
            record["city"] = {"names": {"en": town}}
        city.insert_network(IPSet([net]), record)
        asn.insert_network(
            IPSet([net]),
            {"autonomous_system_number": MmdbU32(number), "autonomous_system_organization": org},
        )
    for net, number, org in ASN_ONLY:
        asn.insert_network(
            IPSet([net]),
            {"autonomous_system_number": MmdbU32(number), "autonomous_system_organization": org},
        )
    # Written beside and renamed over: a reader never sees half a file.
    for writer, name in [(city, "city.mmdb"), (asn, "asn.mmdb")]:
        tmp = os.path.join(out, name + ".tmp")
        writer.to_db_file(tmp)
        os.replace(tmp, os.path.join(out, name))


if __name__ == "__main__":
    main()
