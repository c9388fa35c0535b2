"""Deterministic demo data for the sandbox (no external data sets)."""

from __future__ import annotations

FIRST = ["Ada", "Grace", "Alan", "Barbara", "Edsger", "Margaret", "Dennis", "Frances", "Ken"]
LAST = ["Lovelace", "Hopper", "Turing", "Liskov", "Dijkstra", "Hamilton", "Ritchie", "Allen"]
COMPANIES = ["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Wonka"]


def demo_contacts(n: int) -> list[dict]:
    rows = []
    for i in range(n):
        first, last = FIRST[i % len(FIRST)], LAST[(i // len(FIRST)) % len(LAST)]
        company = COMPANIES[i % len(COMPANIES)]
        rows.append(
            {
                "first_name": first,
                "last_name": last,
                "email": f"{first}.{last}.{i}@{company.lower()}.example".lower(),
                "phone": f"+1 415 555 {i % 10000:04d}",
                "company": company,
            }
        )
    return rows


def demo_companies(n: int) -> list[dict]:
    return [
        {"name": f"{COMPANIES[i % len(COMPANIES)]} {i}", "website": f"https://www.c{i}.example"}
        for i in range(n)
    ]
