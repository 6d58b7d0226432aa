"""Texts of the incident, meter-readings and charges pages (Bahasa Indonesia first,
English second), kept beside `i18n` so these pages can grow without touching the shared
catalogue; `texts` gives the shared catalogue with these added."""

from __future__ import annotations

from collections.abc import Mapping

from operator_data.api import i18n

_TEXTS: dict[str, tuple[str, str]] = {
    # navigation
    "incidents": ("Insiden", "Incidents"),
    "charges": ("Biaya SMS", "SMS charges"),
    # incident queue
    "incident": ("Insiden", "Incident"),
    "category": ("Kategori", "Category"),
    "subject": ("Perihal", "Subject"),
    "opened": ("Dibuka (WIB)", "Opened (WIB)"),
    "resolved_at": ("Diselesaikan (WIB)", "Resolved (WIB)"),
    "assigned_to": ("Ditangani oleh", "Assigned to"),
    "unassigned": ("(belum ada)", "(nobody)"),
    "state_open": ("Terbuka", "Open"),
    "state_assigned": ("Ditangani", "Assigned"),
    "state_resolved": ("Selesai", "Resolved"),
    "working_queue": ("Antrean kerja", "Working queue"),
    "all_states": ("Semua", "All"),
    "take": ("Ambil alih", "Take"),
    "assign": ("Tugaskan", "Assign"),
    "note": ("Catatan", "Note"),
    "add_note": ("Tambah catatan", "Add note"),
    "resolve": ("Selesaikan", "Resolve"),
    "resolution": ("Penyelesaian", "Resolution"),
    "reopen": ("Buka kembali", "Reopen"),
    "history": ("Riwayat", "History"),
    "links": ("Tautan", "Links"),
    "add_link": ("Tambah tautan", "Add link"),
    "caused_by": ("Terkait dengan", "Linked to"),
    "hub_notes": ("Catatan hub", "Hub notes"),
    "link_transaction": ("Transaksi", "Transaction"),
    "link_meter": ("Meter", "Meter"),
    "link_message": ("SMS", "Message"),
    "link_alarm": ("Alarm", "Alarm"),
    "link_customer": ("Pelanggan", "Customer"),
    "link_phone": ("No. HP", "Phone"),
    "action_assign": ("ditugaskan", "assigned"),
    "action_note": ("catatan", "note"),
    "action_resolve": ("diselesaikan", "resolved"),
    "action_reopen": ("dibuka kembali", "reopened"),
    "action_link": ("tautan ditambah", "link added"),
    "done_incident": ("Tersimpan.", "Saved."),
    "problem_note_length": (
        "Catatan harus 1-2000 karakter.",
        "The note must be 1-2000 characters long.",
    ),
    "problem_resolution_required": (
        "Tulis penyelesaiannya (3-2000 karakter).",
        "Write the resolution (3-2000 characters).",
    ),
    "problem_unknown_user": (
        "Pengguna itu tidak ada atau nonaktif.",
        "That user does not exist or is deactivated.",
    ),
    "problem_assign_others": (
        "Hanya supervisor yang dapat menugaskan insiden ke orang lain.",
        "Only a supervisor may assign an incident to someone else.",
    ),
    "problem_reopen_supervisor": (
        "Hanya supervisor yang dapat membuka kembali insiden.",
        "Only a supervisor may reopen an incident.",
    ),
    "problem_wrong_state": (
        "Tidak dapat dilakukan pada status insiden saat ini.",
        "Not possible in the incident's current state.",
    ),
    "problem_bad_link": (
        "Tautan tidak sah: jenis atau nomor salah, atau tidak ada.",
        "Invalid link: wrong kind or reference, or it does not exist.",
    ),
    "problem_bad_filter": ("Saringan tidak sah.", "Invalid filter."),
    # meter readings
    "readings": ("Pembacaan meter", "Meter readings"),
    "readings_and_credit": ("Pembacaan, alarm & kredit", "Readings, alarms & credit"),
    "credit_now": ("Sisa kredit terakhir", "Latest credit"),
    "read_at": ("Dibaca (WIB)", "Read (WIB)"),
    "credit_kwh": ("Kredit (kWh)", "Credit (kWh)"),
    "total_kwh": ("Total (kWh)", "Total (kWh)"),
    "voltage": ("Tegangan (V)", "Voltage (V)"),
    "power": ("Daya (W)", "Power (W)"),
    "signal_csq": ("Sinyal (CSQ)", "Signal (CSQ)"),
    "credit_chart": ("Kredit (kWh) dari waktu ke waktu", "Credit (kWh) over time"),
    "alarm_history": ("Riwayat alarm", "Alarm history"),
    "meaning": ("Artinya", "What it means"),
    "token_history": ("Riwayat token & pembelian", "Token and purchase history"),
    "kwh": ("kWh", "kWh"),
    "no_reading_yet": (
        "Belum ada pembacaan dari meter ini.",
        "No reading has arrived from this meter yet.",
    ),
    "reading_kind_balance": ("cek saldo", "balance check"),
    "reading_kind_telemetry": ("rutin", "routine"),
    "signal_weak": ("lemah", "weak"),
    "bad_cursor": ("Penanda halaman tidak sah.", "The page cursor is not valid."),
    # charges
    "period": ("Periode", "Period"),
    "total": ("Total", "Total"),
    "sms_count": ("Jumlah SMS", "SMS count"),
    "amount_idr": ("Biaya (Rp)", "Amount (IDR)"),
    "purpose": ("Keperluan", "Purpose"),
    "price_version": ("Versi tarif", "Price version"),
    "charged_at": ("Dibebankan (WIB)", "Charged (WIB)"),
    "message": ("SMS", "Message"),
    "export_csv": ("Unduh CSV", "Download CSV"),
    "charges_by_kind": ("Ringkasan per alur dan keperluan", "Summary by flow and purpose"),
    "charge_rows": ("Rincian biaya", "Charges one by one"),
    "lookup_meter": (
        "No. meter (11 digit) untuk melihat pembacaan dan kreditnya",
        "Meter number (11 digits) to see its readings and credit",
    ),
    "lookup_customer": (
        "ID pelanggan (12 digit) untuk melihat biaya SMS-nya",
        "Customer ID (12 digits) to see their SMS charges",
    ),
    "lookup_bad_meter": (
        "No. meter harus 11 digit angka.",
        "A meter number is 11 digits.",
    ),
    "lookup_bad_customer": (
        "ID pelanggan harus 12 digit angka.",
        "A customer ID is 12 digits.",
    ),
    "open": ("Buka", "Open"),
}

#: Plain-language meaning of each alarm code the meter firmware sends
#: (firmware_protocol.frames.messages.AlarmKind), for the caller on the phone.
ALARM_MEANINGS: dict[str, tuple[str, str]] = {
    "LOW_CREDIT": (
        "Kredit hampir habis: segera beli token agar listrik tidak padam.",
        "Credit is running low: buy a token soon so the supply is not cut.",
    ),
    "NO_CREDIT": (
        "Kredit habis: meter memutus listrik sampai token baru dimasukkan.",
        "Credit is used up: the meter has cut the supply until a new token is entered.",
    ),
    "TAMPER": (
        "Meter mendeteksi upaya pembongkaran atau manipulasi; petugas perlu memeriksa.",
        "The meter detected tampering; a field officer needs to inspect it.",
    ),
    "COVER_OPEN": (
        "Tutup meter dibuka; petugas perlu memeriksa segelnya.",
        "The meter cover was opened; a field officer needs to check the seal.",
    ),
    "MAGNETIC": (
        "Ada medan magnet kuat di dekat meter (kemungkinan manipulasi).",
        "A strong magnetic field near the meter (possible interference).",
    ),
    "OVER_POWER": (
        "Pemakaian melebihi daya kontrak: meter memutus listrik; kurangi beban lalu nyalakan lagi.",
        "Load above the contracted power: the meter cut the supply; reduce the load and "
        "switch on again.",
    ),
    "POWER_FAIL": (
        "Listrik PLN padam di lokasi meter (dikirim dengan daya cadangan meter).",
        "Mains power was lost at the meter (sent on the meter's reserve power).",
    ),
    "POWER_RESTORE": ("Listrik PLN menyala kembali.", "Mains power came back."),
}


def _catalogue(index: int) -> dict[str, str]:
    return {key: pair[index] for key, pair in _TEXTS.items()}


_OWN = {lang: _catalogue(i) for i, lang in enumerate(i18n.LANGUAGES)}


def texts(language: str) -> Mapping[str, str]:
    """The shared catalogue plus this module's texts."""
    lang = i18n.pick_language(language)
    return {**i18n.texts(lang), **_OWN[lang]}


def nav_texts(language: str) -> Mapping[str, str]:
    """The menu's labels for these pages (the base template renders them on every page)."""
    own = _OWN[i18n.pick_language(language)]
    return {key: own[key] for key in ("incidents", "charges", "readings", "readings_and_credit")}


def alarm_meaning(code: str, language: str) -> str:
    pair = ALARM_MEANINGS.get(code.upper())
    if pair is None:
        return ""
    return pair[i18n.LANGUAGES.index(i18n.pick_language(language))]
