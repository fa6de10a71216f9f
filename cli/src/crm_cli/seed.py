"""A realistic demo tenant: people and companies across every region, in the scripts
the tenant's customers write their names in (Latin, Devanagari, Gujarati, Persian),
with owners, tags, notes and consents. Everything goes through the public API.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import httpx

from crm_kit.auth import mint_token
from crm_kit.placement import ResidencyPolicy, region_for_country

# (country, phone prefix as people type it, city, language, first names, last names)
PEOPLE: list[tuple[str, str, str, str, list[str], list[str]]] = [
    (
        "DE",
        "030 ",
        "Berlin",
        "de",
        ["Anna", "Jürgen", "Lena", "Matthias", "Sophie", "Günter"],
        ["Müller", "Schröder", "Weiß", "Köhler", "Fischer", "Groß"],
    ),
    (
        "FR",
        "01 ",
        "Paris",
        "fr",
        ["Amélie", "François", "Chloé", "Émile"],
        ["Dubois", "Lefèvre", "Moreau", "Girard"],
    ),
    (
        "ES",
        "91 ",
        "Madrid",
        "es",
        ["José", "María", "Íñigo", "Lucía"],
        ["García", "Núñez", "Peña", "Ortiz"],
    ),
    (
        "PT",
        "21 ",
        "Lisboa",
        "pt-PT",
        ["João", "Inês", "Gonçalo"],
        ["Gonçalves", "Simões", "Araújo"],
    ),
    (
        "BR",
        "(11) 9",
        "São Paulo",
        "pt-BR",
        ["Thiago", "Fernanda", "Luíza", "Otávio", "Beatriz", "Caio"],
        ["Conceição", "Magalhães", "Brandão", "Pereira", "Assunção", "Lima"],
    ),
    (
        "US",
        "(415) 555-",
        "San Francisco",
        "en",
        ["Emily", "Michael", "Olivia", "James"],
        ["Johnson", "Carter", "Nguyen", "Rivera"],
    ),
    (
        "IN",
        "+91 98",
        "मुंबई",
        "hi",
        ["अनिल", "प्रिया", "राहुल", "सुनीता"],
        ["शर्मा", "वर्मा", "गुप्ता", "मेहता"],
    ),
    (
        "IN",
        "+91 97",
        "અમદાવાદ",
        "gu",
        ["કિરણ", "હેતલ", "જયેશ", "નિશા"],
        ["પટેલ", "શાહ", "દેસાઈ", "મોદી"],
    ),
    (
        "IR",
        "+98 912 ",
        "تهران",
        "fa",
        ["مریم", "علی", "زهرا", "رضا"],
        ["احمدی", "حسینی", "کریمی", "رضایی"],
    ),
]
COMPANIES = {
    "DE": ["Nordlicht Fenster GmbH", "Bäckerei Körner", "Rhein Logistik AG"],
    "FR": ["Atelier Lumière SARL", "Vignobles Girard"],
    "ES": ["Construcciones Peña SL"],
    "PT": ["Azulejos do Tejo Lda"],
    "BR": ["Janelas Paulista Ltda", "Café Serra Azul", "Construtora Horizonte"],
    "US": ["Golden Gate Windows Inc", "Bay Area Solar LLC"],
    "IN": ["श्री गणेश ट्रेडर्स", "પટેલ એન્જિનિયરિંગ"],
    "IR": ["پنجره‌سازان تهران"],
}
# Subscriber digits after the prefix above, so that every number is valid.
DIGITS = {"DE": 7, "FR": 8, "ES": 7, "PT": 7, "BR": 8, "US": 4, "IN": 8, "IR": 7}
ROLES = ["accountant", "buyer", "director", "engineer", "owner"]
TAGS = ["vip", "newsletter", "windows", "doors", "installation", "referral", "trade-fair"]
STAGES = ["lead", "prospect", "customer", "churned"]
SOURCES = ["manual", "web_form", "import", "call", "referral", "event"]
OWNERS = [
    ("rep-anna", "emea"),
    ("rep-bruno", "latam"),
    ("rep-carla", "americas"),
    ("mgr-dieter", "emea"),
]
NOTES = [
    "Asked for a quote for three windows.",
    "Called back, prefers contact in the morning.",
    "Met at the trade fair; interested in installation next spring.",
    "Sent the brochure by email.",
]


async def load_demo_tenant(
    url: str, secret: str, tenant: str, *, people: int, companies: int, seed: int = 7
) -> dict[str, tuple[int, int]]:
    rng = random.Random(seed)
    regions = ["eu", "br", "us"]
    policy = ResidencyPolicy()
    # One admin per region: each record is written by a user whose home region holds it,
    # so seeding needs no cross-region grant.
    headers = {
        region: {
            "Authorization": "Bearer "
            + mint_token(
                secret, tenant=tenant, user="seed-admin", roles=["admin"], home_region=region
            )
        }
        for region in regions
    }
    counts = {region: [0, 0] for region in regions}
    company_ids: dict[str, list[str]] = {}
    limit = asyncio.Semaphore(8)

    async with httpx.AsyncClient(base_url=url, timeout=30) as client:

        async def post(region: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
            async with limit:
                reply = await client.post(path, json=body, headers=headers[region])
            if reply.status_code >= 400:
                raise RuntimeError(f"POST {path} failed: {reply.status_code} {reply.text}")
            data: dict[str, Any] = reply.json()
            return data

        async def make_company(country: str, name: str) -> None:
            region = region_for_country(country, policy, regions)
            owner, team = rng.choice(OWNERS)
            created = await post(
                region,
                "/v1/companies",
                {
                    "name": name,
                    "address": {"country": country},
                    "owner_id": owner,
                    "owner_team": team,
                    "tags": rng.sample(TAGS, 2),
                },
            )
            company_ids.setdefault(country, []).append(created["id"])
            counts[region][1] += 1

        names = [(country, name) for country, names in COMPANIES.items() for name in names]
        await asyncio.gather(
            *(
                make_company(c, f"{n}" if i < len(names) else f"{n} {i // len(names) + 1}")
                for i, (c, n) in ((i, names[i % len(names)]) for i in range(companies))
            )
        )

        async def make_person(i: int) -> None:
            country, prefix, city, language, firsts, lasts = rng.choice(PEOPLE)
            region = region_for_country(country, policy, regions)
            first, last = rng.choice(firsts), rng.choice(lasts)
            owner, team = rng.choice(OWNERS)
            digits = "".join(str(rng.randint(0, 9)) for _ in range(DIGITS[country]))
            body: dict[str, Any] = {
                "first_name": first,
                "last_name": last,
                "emails": [f"person{i}@example.{country.lower()}"],
                "phones": [f"{prefix}{digits}"],
                "address": {"city": city, "country": country},
                "language": language,
                "owner_id": owner,
                "owner_team": team,
                "source": rng.choice(SOURCES),
                "lifecycle_stage": rng.choice(STAGES),
                "tags": rng.sample(TAGS, rng.randint(0, 3)),
                "important_dates": [
                    {
                        "kind": "birthday",
                        "date": f"19{rng.randint(50, 99)}-0{rng.randint(1, 9)}"
                        f"-{rng.randint(10, 28)}",
                    }
                ],
            }
            if company_ids.get(country) and rng.random() < 0.6:
                body["companies"] = [
                    {"company_id": rng.choice(company_ids[country]), "role": rng.choice(ROLES)}
                ]
            created = await post(region, "/v1/contacts", body)
            counts[region][0] += 1
            if rng.random() < 0.5:
                await post(
                    region, f"/v1/contacts/{created['id']}/notes", {"body": rng.choice(NOTES)}
                )
            if rng.random() < 0.4:
                await post(
                    region,
                    f"/v1/contacts/{created['id']}/consents",
                    {
                        "purpose": "marketing_email",
                        "lawful_basis": "consent",
                        "status": "granted",
                        "source": "web_form",
                    },
                )

        await asyncio.gather(*(make_person(i) for i in range(people)))
    return {region: (c[0], c[1]) for region, c in counts.items()}
