"""Synthetic but realistic contacts for the benchmark, built the way the service builds them.

Each row carries the columns of `crm_contacts.models.Contact`, an id from
`crm_kit.ids.new_id(region)` and a `search_text` from
`crm_contacts.search_text.search_document(...)`, so a searched row is indistinguishable
from one written through the API. Names mix accented Latin, Devanagari and Persian;
phones are E.164 numbers of the contact's country; every region gets only countries
that the default residency policy places there.

Rows are built in worker processes (`build_chunk`) and copied into PostgreSQL by the
caller with `COPY` (asyncpg `copy_records_to_table`).
"""

from __future__ import annotations

import bisect
import json
import random
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Any

from unidecode import unidecode

from crm_contacts.normalize import default_time_zone
from crm_contacts.search_text import search_document
from crm_kit.ids import new_id

TENANT = "t_bench"

# Columns filled by COPY, in this order (the rest keep their server defaults).
COLUMNS = (
    "id",
    "tenant_id",
    "first_name",
    "last_name",
    "emails",
    "phones",
    "address",
    "country",
    "time_zone",
    "language",
    "owner_id",
    "owner_team",
    "source",
    "lifecycle_stage",
    "tags",
    "important_dates",
    "custom_fields",
    "search_text",
    "merged_into_id",
    "version",
    "created_at",
    "updated_at",
)

# A name is (as written, romanized for the email address).
Name = tuple[str, str]


def _latin(*names: str) -> list[Name]:
    return [(n, unidecode(n).lower().replace(" ", "").replace("'", "")) for n in names]


# Given names and family names per naming culture.
CULTURES: dict[str, tuple[list[Name], list[Name]]] = {
    "de": (
        _latin(
            "Anna", "Jürgen", "Jörg", "Sören", "Käthe", "Lena", "Lukas", "Maximilian", "Sophie",
            "Hannah", "Paul", "Felix", "Günther", "Björn", "Ute", "Klaus", "Sabine", "Heike",
        ),
        _latin(
            "Müller", "Schröder", "Schäfer", "Weiß", "Groß", "Köhler", "Bäcker", "Krüger",
            "Schmidt", "Schneider", "Fischer", "Meyer", "Wagner", "Becker", "Hoffmann",
            "Löwe", "Förster", "Jäger", "Vogel", "Hüber",
        ),
    ),
    "fr": (
        _latin(
            "François", "Hélène", "Chloé", "Léa", "Zoé", "Théo", "Émile", "Noémie", "Jérôme",
            "Céline", "Amélie", "René", "Gaëlle", "Loïc",
        ),
        _latin(
            "Lefèvre", "Girard", "Dubois", "Moreau", "Laurent", "Bézier", "Mercier", "Fontaine",
            "Chevalier", "Rousseau", "Guérin", "Lemaître",
        ),
    ),
    "es": (
        _latin(
            "José", "María", "Sofía", "Lucía", "Martín", "Álvaro", "Andrés", "Inés", "Raúl",
            "Ángela", "Jesús", "Begoña",
        ),
        _latin(
            "García", "Martínez", "Rodríguez", "López", "Pérez", "Sánchez", "Gómez", "Fernández",
            "Jiménez", "Muñoz", "Núñez", "Ibáñez",
        ),
    ),
    "it": (
        _latin(
            "Giulia", "Francesco", "Alessandro", "Chiara", "Niccolò", "Lorenzo", "Martina",
            "Matteo", "Federica", "Giuseppe",
        ),
        _latin(
            "Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "Colombo", "Ricci",
            "Marino", "Greco", "De Luca", "Conti",
        ),
    ),
    "pl": (
        _latin(
            "Łukasz", "Małgorzata", "Agnieszka", "Paweł", "Michał", "Katarzyna", "Wojciech",
            "Zofia", "Bartłomiej", "Joanna",
        ),
        _latin(
            "Nowak", "Kowalski", "Wiśniewski", "Wójcik", "Kowalczyk", "Kamiński", "Lewandowski",
            "Zieliński", "Szymański", "Woźniak", "Dąbrowski",
        ),
    ),
    "nl": (
        _latin("Daan", "Sanne", "Bram", "Femke", "Joost", "Lotte", "Sem", "Anouk"),
        _latin("de Jong", "Jansen", "de Vries", "van den Berg", "Bakker", "Visser", "Smit"),
    ),
    "sv": (
        _latin("Åsa", "Björn", "Linnéa", "Måns", "Ingrid", "Oskar", "Maja", "Göran"),
        _latin("Håkansson", "Lindström", "Johansson", "Andersson", "Öberg", "Ström", "Nilsson"),
    ),
    "cs": (
        _latin("Jiří", "Tereza", "Tomáš", "Kateřina", "Lukáš", "Zdeněk"),
        _latin("Dvořák", "Novák", "Svoboda", "Černý", "Procházka", "Kučera"),
    ),
    "pt": (
        _latin(
            "João", "José", "Maria", "Ana", "Luíza", "Conceição", "Antônio", "Gabriel", "Beatriz",
            "Letícia", "Júlia", "Thiago", "Mateus", "Vitória", "Sebastião", "Ana Paula",
            "Francisco", "Paulo", "Pedro", "Lucas", "Luiz", "Carlos", "Marcos", "Rafael",
            "Fernanda", "Camila", "Juliana", "Mariana", "Patrícia", "Aline", "Rodrigo", "Inês",
        ),
        _latin(
            "Silva", "Santos", "Oliveira", "Souza", "Gonçalves", "Araújo", "Magalhães", "Simões",
            "Assunção", "Lima", "Pereira", "Ribeiro", "Carvalho", "Conceição", "Falcão",
            "Brandão", "Rodrigues", "Ferreira", "Alves", "Gomes", "Martins", "Rocha", "Barbosa",
            "Cardoso", "Teixeira", "Mendes", "Nascimento", "Moreira", "Sá", "Côrtes",
        ),
    ),
    "en": (
        _latin(
            "James", "Mary", "Robert", "Patricia", "Michael", "Jennifer", "William", "Linda",
            "David", "Elizabeth", "Emily", "Olivia", "Noah", "Liam", "Chloe", "Zoë",
        ),
        _latin(
            "Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson",
            "Anderson", "Taylor", "Thomas", "Moore", "Jackson", "White", "O'Brien", "Nguyen",
        ),
    ),
    "mx": (
        _latin("José", "Guadalupe", "Juan", "Verónica", "Héctor", "Ramón", "Mónica", "Óscar"),
        _latin("Hernández", "García", "Martínez", "González", "Ramírez", "Cruz", "Gutiérrez"),
    ),
    "tr": (
        _latin("Ayşe", "Mehmet", "Emine", "Çağla", "Gökhan", "Özlem", "Şükrü"),
        _latin("Yılmaz", "Kaya", "Demir", "Şahin", "Çelik", "Öztürk", "Aydın"),  # noqa: RUF001
    ),
    "hi": (
        [
            ("अनिल", "anil"), ("सुनीता", "sunita"), ("राहुल", "rahul"), ("प्रिया", "priya"),
            ("विकास", "vikas"), ("अंजलि", "anjali"), ("संजय", "sanjay"), ("पूजा", "pooja"),
            ("अमित", "amit"), ("नेहा", "neha"),
        ],
        [
            ("शर्मा", "sharma"), ("वर्मा", "verma"), ("गुप्ता", "gupta"), ("सिंह", "singh"),
            ("पटेल", "patel"), ("जोशी", "joshi"), ("मेहता", "mehta"), ("कुमार", "kumar"),
        ],
    ),
    "in": (
        _latin("Anil", "Sunita", "Rahul", "Priya", "Vikram", "Lakshmi", "Arjun", "Deepa"),
        _latin("Sharma", "Patel", "Iyer", "Reddy", "Nair", "Singh", "Banerjee", "Rao"),
    ),
    "fa": (
        [
            ("علی", "ali"), ("مریم", "maryam"), ("رضا", "reza"), ("زهرا", "zahra"),
            ("محمد", "mohammad"), ("فاطمه", "fatemeh"), ("حسین", "hossein"), ("سارا", "sara"),
            ("امیر", "amir"), ("نیلوفر", "niloufar"),
        ],
        [
            ("رضایی", "rezaei"), ("احمدی", "ahmadi"), ("محمدی", "mohammadi"),
            ("حسینی", "hosseini"), ("کریمی", "karimi"), ("موسوی", "mousavi"),
            ("جعفری", "jafari"), ("صادقی", "sadeghi"),
        ],
    ),
}  # fmt: skip

# Per country: language, cities, email domains, naming cultures (weighted),
# phone prefixes after the country code and national significant number length.
COUNTRIES: dict[str, dict[str, Any]] = {
    "DE": {
        "language": "de-DE",
        "cities": ["Berlin", "München", "Köln", "Düsseldorf", "Nürnberg", "Hamburg"],
        "domains": ["web.de", "gmx.de", "t-online.de", "example.de"],
        "cultures": [("de", 84), ("tr", 6), ("pl", 3), ("hi", 3), ("fa", 4)],
        "phone": ("49", ["151", "160", "170", "176", "30", "40", "89"], 11),
    },
    "FR": {
        "language": "fr-FR",
        "cities": ["Paris", "Lyon", "Marseille", "Besançon", "Orléans"],
        "domains": ["orange.fr", "free.fr", "laposte.net"],
        "cultures": [("fr", 92), ("es", 4), ("fa", 4)],
        "phone": ("33", ["61", "62", "65", "66", "67", "68", "75", "76", "77", "78", "1"], 9),
    },
    "ES": {
        "language": "es-ES",
        "cities": ["Madrid", "Barcelona", "Sevilla", "Málaga", "A Coruña"],
        "domains": ["gmail.com", "telefonica.es", "example.es"],
        "cultures": [("es", 96), ("hi", 4)],
        "phone": ("34", ["6", "71", "72", "73", "74", "91"], 9),
    },
    "IT": {
        "language": "it-IT",
        "cities": ["Roma", "Milano", "Napoli", "Torino", "Forlì"],
        "domains": ["libero.it", "tiscali.it", "gmail.com"],
        "cultures": [("it", 97), ("fa", 3)],
        "phone": ("39", ["31", "32", "33", "34"], 10),
    },
    "PL": {
        "language": "pl-PL",
        "cities": ["Warszawa", "Kraków", "Łódź", "Wrocław", "Gdańsk"],
        "domains": ["wp.pl", "onet.pl", "o2.pl"],
        "cultures": [("pl", 100)],
        "phone": ("48", ["50", "60", "69", "79"], 9),
    },
    "NL": {
        "language": "nl-NL",
        "cities": ["Amsterdam", "Rotterdam", "Utrecht", "Den Haag"],
        "domains": ["ziggo.nl", "kpnmail.nl", "gmail.com"],
        "cultures": [("nl", 90), ("tr", 5), ("hi", 5)],
        "phone": ("31", ["61", "62", "63", "64", "65"], 9),
    },
    "SE": {
        "language": "sv-SE",
        "cities": ["Stockholm", "Göteborg", "Malmö", "Västerås"],
        "domains": ["telia.com", "gmail.com"],
        "cultures": [("sv", 92), ("fa", 8)],
        "phone": ("46", ["70", "72", "73"], 9),
    },
    "AT": {
        "language": "de-AT",
        "cities": ["Wien", "Graz", "Linz", "Innsbruck"],
        "domains": ["aon.at", "gmx.at"],
        "cultures": [("de", 95), ("tr", 5)],
        "phone": ("43", ["664", "676", "699"], 10),
    },
    "CZ": {
        "language": "cs-CZ",
        "cities": ["Praha", "Brno", "Ostrava", "Plzeň"],
        "domains": ["seznam.cz", "email.cz"],
        "cultures": [("cs", 100)],
        "phone": ("420", ["601", "602", "603", "604", "605", "72", "77"], 9),
    },
    "PT": {
        "language": "pt-PT",
        "cities": ["Lisboa", "Porto", "Coimbra", "Évora"],
        "domains": ["sapo.pt", "gmail.com"],
        "cultures": [("pt", 100)],
        "phone": ("351", ["91", "93", "96"], 9),
    },
    "BR": {
        "language": "pt-BR",
        "cities": ["São Paulo", "Rio de Janeiro", "Belo Horizonte", "Florianópolis", "Goiânia"],
        "domains": ["uol.com.br", "bol.com.br", "gmail.com", "example.com.br"],
        "cultures": [("pt", 88), ("de", 4), ("it", 4), ("es", 4)],
        "phone": ("55", ["119", "219", "319", "419", "489", "619"], 11),
    },
    "US": {
        "language": "en-US",
        "cities": ["New York", "San Francisco", "Chicago", "Houston", "Miami", "Seattle"],
        "domains": ["gmail.com", "yahoo.com", "outlook.com", "example.com"],
        "cultures": [("en", 78), ("mx", 10), ("in", 4), ("hi", 3), ("fa", 5)],
        "phone": ("1", ["212", "415", "312", "713", "305", "206", "646"], 10),
    },
    "CA": {
        "language": "en-CA",
        "cities": ["Toronto", "Montréal", "Vancouver", "Québec"],
        "domains": ["rogers.com", "videotron.ca", "gmail.com"],
        "cultures": [("en", 70), ("fr", 20), ("fa", 5), ("hi", 5)],
        "phone": ("1", ["416", "514", "604", "418"], 10),
    },
    "GB": {
        "language": "en-GB",
        "cities": ["London", "Manchester", "Birmingham", "Leeds"],
        "domains": ["btinternet.com", "gmail.com"],
        "cultures": [("en", 85), ("in", 10), ("hi", 5)],
        "phone": ("44", ["74", "75", "77", "78", "79"], 10),
    },
    "IN": {
        "language": "hi-IN",
        "cities": ["Mumbai", "Delhi", "Bengaluru", "Pune", "Chennai"],
        "domains": ["gmail.com", "rediffmail.com", "yahoo.co.in"],
        "cultures": [("in", 55), ("hi", 45)],
        "phone": ("91", ["98", "99", "97", "70", "81"], 10),
    },
    "MX": {
        "language": "es-MX",
        "cities": ["Ciudad de México", "Guadalajara", "Monterrey", "Mérida"],
        "domains": ["gmail.com", "hotmail.com", "prodigy.net.mx"],
        "cultures": [("mx", 100)],
        "phone": ("52", ["55", "33", "81"], 10),
    },
}

# Which countries each region holds, weighted (the default residency policy places
# EEA countries in eu, Brazil in br and everything else in us).
REGION_COUNTRIES: dict[str, list[tuple[str, int]]] = {
    "eu": [
        ("DE", 30), ("FR", 14), ("ES", 12), ("IT", 12), ("PL", 8), ("NL", 6), ("SE", 5),
        ("AT", 5), ("CZ", 4), ("PT", 4),
    ],
    "br": [("BR", 100)],
    "us": [("US", 70), ("CA", 9), ("GB", 9), ("IN", 7), ("MX", 5)],
}  # fmt: skip

TAGS = ["vip", "newsletter", "trade-show-2026", "partner", "churn-risk", "enterprise", "smb"]
SOURCES = [("manual", 30), ("web_form", 25), ("import", 25), ("referral", 8), ("event", 7)]
SOURCES += [("call", 3), ("email", 2)]
STAGES = [("lead", 45), ("prospect", 25), ("customer", 25), ("churned", 5)]
OWNERS_PER_REGION = 40
TEAMS = ["north", "south", "east", "west", "key-accounts"]
EPOCH = datetime(2023, 1, 1, tzinfo=UTC)
SPAN_SECONDS = int(timedelta(days=3 * 365).total_seconds())


@cache
def _cumulative(weighted: tuple[tuple[str, int], ...]) -> tuple[list[str], list[int]]:
    values, totals, total = [], [], 0
    for value, weight in weighted:
        total += weight
        values.append(value)
        totals.append(total)
    return values, totals


def _pick(rng: random.Random, weighted: list[tuple[str, int]]) -> str:
    values, totals = _cumulative(tuple(weighted))
    return values[bisect.bisect_right(totals, rng.random() * totals[-1])]


@cache
def _time_zone(country: str) -> str:
    return default_time_zone(country) or ""


def e164(rng: random.Random, country: str) -> str:
    code, prefixes, length = COUNTRIES[country]["phone"]
    prefix = rng.choice(prefixes)
    width = length - len(prefix)
    rest = str(rng.randrange(10**width)).zfill(width)
    if code == "1":  # NANP: the exchange (7th digit from the end) is 2-9
        rest = rng.choice("23456789") + rest[1:]
    return f"+{code}{prefix}{rest}"


def contact_row(rng: random.Random, region: str, owners: list[str]) -> tuple[Any, ...]:
    country = _pick(rng, REGION_COUNTRIES[region])
    info = COUNTRIES[country]
    culture = _pick(rng, info["cultures"])
    first_names, last_names = CULTURES[culture]
    first, first_ascii = rng.choice(first_names)
    last, last_ascii = rng.choice(last_names)
    if culture == "pt" and rng.random() < 0.35:  # Brazilian and Portuguese double surnames
        second, second_ascii = rng.choice(last_names)
        if second != last:
            last, last_ascii = f"{second} {last}", f"{second_ascii}{last_ascii}"
    style = rng.random()
    local = (
        f"{first_ascii}.{last_ascii}"
        if style < 0.5
        else f"{first_ascii[0]}{last_ascii}"
        if style < 0.8
        else f"{first_ascii}{last_ascii}"
    )
    emails = [f"{local}{rng.randint(1, 9999)}@{rng.choice(info['domains'])}"]
    if rng.random() < 0.2:
        emails.append(f"{first_ascii}.{last_ascii}@{last_ascii}-consulting.example.com")
    phones = [e164(rng, country)] if rng.random() < 0.9 else []
    if phones and rng.random() < 0.25:
        phones.append(e164(rng, country))
    address = {
        "city": rng.choice(info["cities"]),
        "country": country,
        "postal_code": str(rng.randint(10000, 99999)),
    }
    owner = rng.choice(owners)
    created = EPOCH + timedelta(seconds=rng.randrange(SPAN_SECONDS))
    important = []
    if rng.random() < 0.15:
        birthday = date(rng.randint(1950, 2004), rng.randint(1, 12), rng.randint(1, 28))
        important.append({"kind": "birthday", "date": birthday.isoformat(), "label": ""})
    return (
        new_id(region),
        TENANT,
        first,
        last,
        emails,
        phones,
        json.dumps(address),
        country,
        _time_zone(country),
        info["language"],
        owner,
        TEAMS[int(owner.rsplit("_", 1)[1]) % len(TEAMS)],
        _pick(rng, SOURCES),
        _pick(rng, STAGES),
        rng.sample(TAGS, rng.choice([0, 0, 1, 1, 2, 3])),
        json.dumps(important),
        "{}",
        search_document(
            first_name=first, last_name=last, emails=emails, phones=phones, company_names=[]
        ),
        None,
        1,
        created,
        created,
    )


def owners(region: str) -> list[str]:
    return [f"u_{region}_{i:03d}" for i in range(OWNERS_PER_REGION)]


def build_chunk(region: str, count: int, seed: int) -> list[tuple[Any, ...]]:
    """`count` contact rows for `region`; deterministic for a seed (except ids)."""
    rng = random.Random(seed)
    region_owners = owners(region)
    return [contact_row(rng, region, region_owners) for _ in range(count)]
