"""Texts of the complaint pages (Bahasa Indonesia first, English second), kept beside the
shared catalogue so these pages can grow without touching it; `texts` gives the shared
catalogue and the incident pages' texts with these added."""

from __future__ import annotations

from collections.abc import Mapping

from operator_data.api import helpdesk_texts, i18n

_TEXTS: dict[str, tuple[str, str]] = {
    "complaints": ("Pengaduan", "Complaints"),
    "complaint": ("Pengaduan", "Complaint"),
    "new_complaint": ("Catat pengaduan", "Record a complaint"),
    "complaint_report": ("Laporan pengaduan", "Complaint report"),
    "annual_summary": ("Ringkasan tahunan", "Annual summary"),
    "ticket": ("No. tiket", "Ticket"),
    "channel": ("Saluran", "Channel"),
    "channel_call": ("Telepon", "Call"),
    "channel_sms": ("SMS (ADUAN)", "SMS (ADUAN)"),
    "channel_other": ("Lainnya", "Other"),
    "category_tagihan": ("Tagihan / biaya", "Charges"),
    "category_token": ("Token / meter", "Token / meter"),
    "category_gangguan": ("Gangguan layanan", "Service disruption"),
    "category_layanan": ("Pelayanan", "Service"),
    "category_lainnya": ("Lainnya", "Other"),
    "complaint_text": ("Isi pengaduan", "What the customer says"),
    "who_hint": (
        "Isi salah satu: ID pelanggan, nomor meter atau nomor HP.",
        "Give at least one: customer ID, meter number or phone number.",
    ),
    "customer_id": ("ID pelanggan", "Customer ID"),
    "meter_number": ("Nomor meter", "Meter number"),
    "phone": ("Nomor HP", "Phone number"),
    "received": ("Diterima (WIB)", "Received (WIB)"),
    "due_on": ("Batas 15 hari kerja", "Due (15 working days)"),
    "final_due_on": ("Batas akhir bulan", "Month-end deadline"),
    "overdue": ("Lewat batas", "Overdue"),
    "third_party": ("Disebabkan pihak ketiga", "Caused by a third party"),
    "third_party_hint": (
        "Dikecualikan dari target 15 hari kerja. Sebutkan alasannya.",
        "Excluded from the 15-working-day target. Give the reason.",
    ),
    "mark_third_party": ("Tandai pihak ketiga", "Mark third party"),
    "unmark_third_party": ("Bukan pihak ketiga", "Not third party"),
    "resolution_code": ("Kode penyelesaian", "Resolution code"),
    "code_solved": ("Masalah diselesaikan", "Problem fixed"),
    "code_refund": ("Dana dikembalikan", "Refunded"),
    "code_token_resent": ("Token dikirim ulang", "Token resent"),
    "code_explained": ("Dijelaskan ke pelanggan", "Explained to the customer"),
    "code_no_fault": ("Tidak ada kesalahan", "No fault found"),
    "code_referred": ("Diteruskan ke pihak lain", "Referred elsewhere"),
    "opened_by": ("Dicatat oleh", "Recorded by"),
    "save": ("Simpan", "Save"),
    "action_open": ("mencatat", "recorded"),
    "action_third_party": ("pihak ketiga", "third party"),
    "done_complaint": ("Tersimpan.", "Saved."),
    "created_complaint": ("Pengaduan tercatat, no. tiket", "Complaint recorded, ticket"),
    "month": ("Bulan", "Month"),
    "show": ("Tampilkan", "Show"),
    "measured": ("Diukur (jatuh tempo bulan ini)", "Measured (due this month)"),
    "within_target": ("Selesai ≤ 15 hari kerja", "Resolved within 15 working days"),
    "by_month_end": (
        "Selesai ≤ hari kerja terakhir bulan",
        "Resolved by the month's last working day",
    ),
    "target_90": ("target ≥ 90 %", "target ≥ 90 %"),
    "target_100": ("target 100 %", "target 100 %"),
    "target_met_yes": ("Target tercapai", "Target met"),
    "target_met_no": ("Target tidak tercapai", "Target missed"),
    "target_met_pending": ("Bulan belum selesai", "Month not over yet"),
    "late_tickets": ("Tiket terlambat", "Late tickets"),
    "third_party_excluded": ("Dikecualikan (pihak ketiga)", "Excluded (third party)"),
    "received_count": ("Diterima bulan ini", "Received this month"),
    "resolved_count": ("Diselesaikan bulan ini", "Resolved this month"),
    "open_now": ("Masih terbuka", "Still open"),
    "last_working_day": ("Hari kerja terakhir", "Last working day"),
    "by_category": ("Per kategori", "By category"),
    "disruption": ("Gangguan (12 bulan)", "Disruption (12 months)"),
    "reports": ("Laporan", "Reports"),
    "per_1000": ("Per 1.000 pelanggan", "Per 1,000 customers"),
    "resolved_share": ("Diselesaikan", "Resolved"),
    "customers": ("Pelanggan aktif", "Active customers"),
    "calendar_gaps": (
        "Tidak ada kalender hari libur untuk tahun: {years}. Hanya akhir pekan yang dihitung.",
        "No holiday calendar for the year(s): {years}. Only weekends were counted.",
    ),
    "year": ("Tahun", "Year"),
    "months_met": ("Bulan target tercapai", "Months target met"),
    "months_missed": ("Bulan target tidak tercapai", "Months target missed"),
    "report_rule": (
        "Diukur: pengaduan yang batas 15 hari kerjanya jatuh di bulan ini, tanpa yang "
        "disebabkan pihak ketiga. Hari kerja: Senin–Jumat kecuali libur nasional dan cuti bersama.",
        "Measured: complaints whose 15-working-day due day falls in the month, without those "
        "caused by a third party. Working days: Monday–Friday except national holidays and "
        "cuti bersama.",
    ),
    "problem_text_length": (
        "Isi pengaduan 1–2000 karakter.",
        "The text must be 1–2000 characters.",
    ),
    "problem_bad_category": ("Pilih kategori.", "Choose a category."),
    "problem_bad_field": (
        "ID pelanggan 12 angka, nomor meter 11 angka, nomor HP 8–15 angka.",
        "Customer ID: 12 digits; meter number: 11 digits; phone: 8–15 digits.",
    ),
    "problem_who_required": (
        "Isi ID pelanggan, nomor meter atau nomor HP.",
        "Give the customer ID, the meter number or the phone number.",
    ),
    "problem_bad_resolution_code": ("Pilih kode penyelesaian.", "Choose a resolution code."),
    "problem_third_party_supervisor": (
        "Hanya supervisor yang dapat menandai pihak ketiga.",
        "Only a supervisor can mark a third-party cause.",
    ),
    "problem_reason_required": (
        "Sebutkan alasannya (min. 3 karakter).",
        "Give the reason (3+ characters).",
    ),
    "problem_bad_month": ("Bulan harus berbentuk YYYY-MM.", "The month must be YYYY-MM."),
}


def _catalogue(index: int) -> dict[str, str]:
    return {key: pair[index] for key, pair in _TEXTS.items()}


_OWN = {lang: _catalogue(i) for i, lang in enumerate(i18n.LANGUAGES)}


def texts(language: str) -> Mapping[str, str]:
    lang = i18n.pick_language(language)
    return {**helpdesk_texts.texts(lang), **_OWN[lang]}


def nav_label(language: str) -> str:
    """The menu's label for the complaint pages (the base template shows it on every page)."""
    return _OWN[i18n.pick_language(language)]["complaints"]
