"""Texts of the incident, meter-readings and charges pages (Bahasa Indonesia first,
English second), kept beside `i18n` so these pages can grow without touching the shared
catalogue; `texts` gives the shared catalogue with these added."""

from __future__ import annotations

from collections.abc import Mapping

from jinja2 import pass_context
from jinja2.runtime import Context

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
    # list filters refused (operator_data/api/list_filters.py)
    "bad_filter_values": (
        "Saringan tidak sah: {names}. Tidak ada data yang ditampilkan.",
        "Invalid filter: {names}. Nothing is shown.",
    ),
    "filter_msisdn": ("no. HP", "phone number"),
    "filter_meter_number": ("no. meter (11 digit)", "meter number (11 digits)"),
    "filter_customer_id": ("ID pelanggan (12 digit)", "customer ID (12 digits)"),
    "filter_state": ("status", "state"),
    "filter_flow": ("alur", "flow"),
    "filter_direction": ("arah", "direction"),
    # SIM swaps
    "sim_swaps": ("Ganti SIM", "SIM swaps"),
    "swap_rule": (
        "Helpdesk mengajukan; orang lain (supervisor) menyetujui atau menolak.",
        "The helpdesk requests; someone else (a supervisor) approves or rejects.",
    ),
    "swap_state_requested": ("Diajukan", "Requested"),
    "swap_state_approved": ("Disetujui", "Approved"),
    "swap_state_rejected": ("Ditolak", "Rejected"),
    "swap_old_sim": ("SIM lama", "Old SIM"),
    "swap_new_sim": ("SIM baru", "New SIM"),
    "swap_requested": ("Diajukan (WIB)", "Requested (WIB)"),
    "swap_decided": ("Diputuskan (WIB)", "Decided (WIB)"),
    "swap_reason": ("Alasan", "Reason"),
    "swap_request": ("Ajukan ganti SIM", "Request a SIM swap"),
    "swap_approve": ("Setujui", "Approve"),
    "swap_reject": ("Tolak", "Reject"),
    "swap_done_requested": (
        "Permintaan ganti SIM tercatat; menunggu persetujuan orang lain.",
        "SIM swap requested; it waits for someone else's approval.",
    ),
    "swap_done_approved": (
        "Ganti SIM disetujui: SIM baru terpasang.",
        "Approved: the new SIM is bound.",
    ),
    "swap_done_rejected": ("Ganti SIM ditolak.", "SIM swap rejected."),
    "swap_problem_bad_meter": ("No. meter harus 11 digit angka.", "A meter number is 11 digits."),
    "swap_problem_bad_number": (
        "No. SIM baru tidak sah.",
        "The new SIM's number is not a valid phone number.",
    ),
    "swap_problem_not_found": (
        "Meter, SIM atau permintaan itu tidak terdaftar.",
        "That meter, SIM or request is not registered.",
    ),
    "swap_problem_conflict": (
        "Tidak bisa: SIM itu sudah terpasang di meter lain, atau meter ini sudah punya "
        "permintaan yang menunggu.",
        "Not possible: that SIM is bound to another meter, or this meter already has a "
        "request waiting.",
    ),
    "swap_problem_own_request": (
        "Permintaan sendiri tidak boleh disetujui sendiri (empat mata).",
        "A request cannot be approved by the one who made it (four eyes).",
    ),
    "swap_problem_decided": (
        "Permintaan itu sudah diputuskan.",
        "That request has already been decided.",
    ),
    "swap_problem_long_text": (
        "Alasan atau catatan paling banyak 500 karakter.",
        "A reason or note is at most 500 characters.",
    ),
    "swap_problem_bad_filter": (
        "Status tidak dikenal; tidak ada data yang ditampilkan.",
        "Unknown state; nothing is shown.",
    ),
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
    keys = ("incidents", "charges", "readings", "readings_and_credit", "sim_swaps")
    return {key: own[key] for key in keys}


def alarm_meaning(code: str, language: str) -> str:
    pair = ALARM_MEANINGS.get(code.upper())
    if pair is None:
        return ""
    return pair[i18n.LANGUAGES.index(i18n.pick_language(language))]


#: What the pages show for a stored value (a state, flow, direction, message kind, SLA
#: stage): (group, value) -> (Bahasa Indonesia, English). The stored value itself stays in
#: the API and in data-* attributes; a value not listed here is shown as it is stored.
VALUE_LABELS: dict[tuple[str, str], tuple[str, str]] = {
    # transaction states (store.states.TransactionState)
    ("tx", "requested"): ("diminta", "requested"),
    ("tx", "submitted"): ("dikirim ke P2APST", "sent to P2APST"),
    ("tx", "advising"): ("advice ke P2APST", "advising P2APST"),
    ("tx", "token_issued"): ("token terbit", "token issued"),
    ("tx", "declined"): ("ditolak P2APST", "declined by P2APST"),
    ("tx", "token_sent"): ("token terkirim ke meter", "token sent to the meter"),
    ("tx", "applied"): ("token diterima meter", "token applied"),
    ("tx", "meter_rejected"): ("token ditolak meter", "token refused by the meter"),
    ("tx", "meter_timeout"): ("meter tidak menjawab", "no answer from the meter"),
    ("tx", "reported"): ("dilaporkan ke P2APST", "reported to P2APST"),
    # message states (MessageState)
    ("msg", "queued"): ("antre", "queued"),
    ("msg", "submitted"): ("diserahkan ke modem", "handed to the modem"),
    ("msg", "sent"): ("diterima jaringan", "accepted by the network"),
    ("msg", "delivered"): ("sampai", "delivered"),
    ("msg", "failed"): ("gagal", "failed"),
    ("msg", "expired"): ("kedaluwarsa", "expired"),
    ("msg", "received"): ("diterima", "received"),
    ("msg", "processed"): ("diproses", "processed"),
    ("msg", "rejected"): ("ditolak", "rejected"),
    # meter and customer states
    ("meter", "requested"): ("diajukan", "requested"),
    ("meter", "connected"): ("tersambung", "connected"),
    ("meter", "active"): ("aktif", "active"),
    ("meter", "suspended"): ("ditangguhkan", "suspended"),
    ("meter", "removed"): ("dicabut", "removed"),
    ("customer", "active"): ("aktif", "active"),
    ("customer", "inactive"): ("tidak aktif", "inactive"),
    # AP2T batches
    ("batch", "sent"): ("terkirim", "sent"),
    ("batch", "acknowledged"): ("dikonfirmasi", "acknowledged"),
    ("batch", "failed"): ("gagal", "failed"),
    # SMS flows and directions
    ("flow", "hub_to_customer"): ("hub → pelanggan", "hub → customer"),
    ("flow", "hub_to_meter"): ("hub → meter", "hub → meter"),
    ("flow", "meter_to_hub"): ("meter → hub", "meter → hub"),
    ("flow", "meter_to_customer"): ("meter → pelanggan", "meter → customer"),
    ("flow", "customer_to_hub"): ("pelanggan → hub", "customer → hub"),
    ("direction", "in"): ("masuk", "in"),
    ("direction", "out"): ("keluar", "out"),
    # message kinds: frame types and customer messages
    ("kind", "token_delivery"): ("kirim token", "token delivery"),
    ("kind", "token_result"): ("hasil token", "token result"),
    ("kind", "balance_query"): ("tanya saldo", "balance query"),
    ("kind", "balance_reply"): ("jawaban saldo", "balance reply"),
    ("kind", "telemetry"): ("telemetri", "telemetry"),
    ("kind", "alarm"): ("alarm", "alarm"),
    ("kind", "read_request"): ("minta pembacaan", "read request"),
    ("kind", "set_config"): ("ubah konfigurasi", "set configuration"),
    ("kind", "config_ack"): ("konfirmasi konfigurasi", "configuration ack"),
    ("kind", "ping"): ("ping", "ping"),
    ("kind", "pong"): ("pong", "pong"),
    ("kind", "load_profile"): ("profil beban", "load profile"),
    ("kind", "receipt"): ("struk pembelian", "receipt"),
    ("kind", "reply"): ("balasan", "reply"),
    ("kind", "balance"): ("saldo", "balance"),
    ("kind", "incident"): ("insiden", "incident"),
    ("kind", "beli"): ("BELI (pembelian)", "BELI (purchase)"),
    ("kind", "saldo"): ("SALDO (cek kredit)", "SALDO (credit check)"),
    # timeline entries of the meter and customer pages
    ("category", "sms"): ("SMS", "SMS"),
    ("category", "transaction"): ("transaksi", "transaction"),
    ("category", "alarm"): ("alarm", "alarm"),
    # SLA stages (operator_data.sla.stages) and the transaction page's metrics
    ("stage", "p2apst_response"): ("jawaban P2APST", "P2APST response"),
    ("stage", "token_to_network"): ("token → jaringan", "token → network"),
    ("stage", "meter_answer"): ("jawaban meter", "meter answer"),
    ("stage", "report_to_p2apst"): ("laporan ke P2APST", "report to P2APST"),
    ("stage", "receipt_to_customer"): ("struk → pelanggan", "receipt → customer"),
    ("stage", "ap2t_batch_interval"): ("jeda batch AP2T", "AP2T batch interval"),
}


def value_label(group: str, value: object, language: str) -> str:
    """The shown label of a stored value; the value as stored when it has none ('' for
    None). Kinds are matched case-insensitively (frame types are stored in capitals)."""
    if value is None:
        return ""
    text = str(value)
    key = text.lower() if group == "kind" else text
    pair = VALUE_LABELS.get((group, key))
    if pair is None:
        return text
    return pair[i18n.LANGUAGES.index(i18n.pick_language(language))]


@pass_context
def template_value_label(context: Context, group: str, value: object) -> str:
    """`v(group, value)` in a template: the label in the page's language (`lang`)."""
    return value_label(group, value, str(context.get("lang") or i18n.DEFAULT_LANGUAGE))
