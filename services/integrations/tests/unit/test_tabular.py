"""Reading tables: encodings, delimiters, header suggestions in five languages."""

from __future__ import annotations

from pathlib import Path

from crm_integrations import tabular
from crm_integrations.imports import located, normalize_row


def test_headers_are_recognised_in_five_languages() -> None:
    assert tabular.suggest(["First Name", "E-mail", "Mobile"]) == {
        "First Name": "first_name",
        "E-mail": "email",
        "Mobile": "phone",
    }
    assert tabular.suggest(["Vorname", "Nachname", "Telefon", "Land", "PLZ"]) == {
        "Vorname": "first_name",
        "Nachname": "last_name",
        "Telefon": "phone",
        "Land": "country",
        "PLZ": "postal_code",
    }
    assert tabular.suggest(["नाम", "फोन", "ईमेल", "शहर"]) == {
        "नाम": "first_name",
        "फोन": "phone",
        "ईमेल": "email",
        "शहर": "city",
    }
    assert tabular.suggest(["ФИО", "Телефон", "Notes"]) == {
        "ФИО": "name",
        "Телефон": "phone",
        "Notes": "",
    }


def test_encodings_and_delimiters(tmp_path: Path) -> None:
    for encoding, expected in (
        ("utf-8-sig", "utf-8-sig"),
        ("utf-8", "utf-8"),
        ("cp1251", "cp1251"),
    ):
        path = tmp_path / f"{encoding}.csv"
        text = "Имя\tТелефон\n" + "".join(
            f"Пётр Иванович\t+7 916 000 00 {i:02d}\n" for i in range(40)
        )
        path.write_bytes(text.encode(encoding))
        found, delimiter, headers = tabular.inspect_csv(path)
        assert (found, delimiter, headers) == (expected, "\t", ["Имя", "Телефон"])
        rows = list(tabular.iter_rows(path, "csv", found, delimiter))
        assert rows[0] == (2, ["Пётр Иванович", "+7 916 000 00 00"])


def test_a_row_is_normalized_or_rejected_whole() -> None:
    headers = ["name", "phone", "email", "country", "born"]
    mapping = {
        "name": "name",
        "phone": "phone",
        "email": "email",
        "country": "country",
        "born": "birthday",
    }
    good = normalize_row(
        2, ["Anna Schmidt", "030 1234567", "A@X.DE", "", "1980-02-03"], headers, mapping, "DE"
    )
    assert good.errors == []
    assert good.contact["phones"] == ["+49301234567"] and good.contact["emails"] == ["a@x.de"]
    assert good.contact["birthday"] == "1980-02-03" and good.contact["country"] == "DE"
    us = normalize_row(3, ["Bob", "(415) 555-0132", "", "US", "02/03/1980"], headers, mapping, "")
    assert us.contact["phones"] == ["+14155550132"] and us.contact["birthday"] == "1980-02-03"
    bad = normalize_row(4, ["X", "99", "x@", "Atlantis", "soon"], headers, mapping, "DE")
    assert {e[0] for e in bad.errors} == {"phone", "email", "country", "born"}


def test_an_error_from_contacts_names_the_files_column_and_value() -> None:
    headers = ["Nome", "E-mail", "Idioma", "País"]
    mapping = {"Nome": "name", "E-mail": "email", "Idioma": "language", "País": "country"}
    row = normalize_row(2, ["Caio Reis", "c@x.br; caio@y.br", "xx", "Brasil"], headers, mapping, "")
    assert located(row, "language", "unknown language") == ("Idioma", "xx", "unknown language")
    # An indexed field names the one value of the cell that was refused.
    assert located(row, "emails[1]", "taken")[:2] == ("E-mail", "caio@y.br")
    assert located(row, "address.country", "no")[:2] == ("País", "Brasil")
    assert located(row, "first_name", "too long")[:2] == ("Nome", "Caio Reis")
    # A field the file did not give keeps the field's name.
    assert located(row, "owner_id", "unknown user") == ("owner_id", "", "unknown user")
