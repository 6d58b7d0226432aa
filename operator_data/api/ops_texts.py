"""Texts of the message detail, purchase search, outbox, resend and gateway pages (Bahasa
Indonesia first, English second), kept beside `helpdesk_texts` so these pages do not
touch the shared catalogue; `texts` gives both catalogues with these added."""

from __future__ import annotations

from collections.abc import Mapping

from operator_data.api import helpdesk_texts, i18n

_TEXTS: dict[str, tuple[str, str]] = {
    "nav_outbox": ("Antrean kirim", "Outbox"),
    "nav_gateways": ("Gateway", "Gateways"),
    "nav_find_purchase": ("Cari transaksi", "Find purchase"),
    "message": ("SMS", "Message"),
    "message_text": ("Isi (disamarkan)", "Text (masked)"),
    "raw_pdu": ("PDU mentah", "Raw PDU"),
    "pdu_masked": (
        "Disembunyikan: SMS pelanggan bisa memuat PIN atau token.",
        "Hidden: a customer's SMS may carry a PIN or a token.",
    ),
    "pdu_none": ("(tidak ada)", "(none)"),
    "retries": ("Percobaan ulang", "Retries"),
    "gateway": ("Gateway", "Gateway"),
    "modem": ("Modem", "Modem"),
    "reject_reason": ("Alasan ditolak/gagal", "Reject reason"),
    "delivery_history": ("Riwayat status kirim", "Delivery history"),
    "in_outbox": ("Masih di antrean kirim", "Still in the outbox"),
    "no_outbox": ("Tidak di antrean kirim.", "Not in the outbox."),
    "find_purchase": ("Cari transaksi", "Find a purchase"),
    "pln_ref": ("Ref. PLN", "PLN reference"),
    "switcher_ref": ("Ref. switcher", "Switcher reference"),
    "token_suffix": ("4 digit akhir token", "Last 4 token digits"),
    "token_suffix_hint": (
        "Dengan 4 digit akhir token, isi juga nomor meter atau ID pelanggan.",
        "With the last 4 token digits, give the meter number or customer ID too.",
    ),
    "amount": ("Nominal (Rp)", "Amount (IDR)"),
    "token": ("Token", "Token"),
    "from_date": ("Dari tanggal (WIB)", "From date (WIB)"),
    "until_date": ("Sampai tanggal (WIB)", "Until date (WIB)"),
    "bad_date": (
        "Tanggal harus berbentuk YYYY-MM-DD, dan 'dari' tidak boleh setelah 'sampai'.",
        "Dates must be YYYY-MM-DD, and 'from' must not be after 'until'.",
    ),
    "outbox": ("Antrean kirim (outbox)", "Outbox"),
    "outbox_intro": (
        "SMS yang menunggu dikirim, urut seperti modem mengambilnya. Batalkan hanya "
        "untuk pemberitahuan pelanggan: frame token dan struk adalah transaksinya sendiri "
        "(hub mengirim ulang dan melapor ke helpdesk sendiri), jadi untuk itu hanya "
        "'Coba lagi'. SMS yang dibatalkan tetap di log dengan status gagal dan alasannya.",
        "SMS waiting to be sent, in the order modems take them. Cancel is for customer "
        "notices only: token frames and receipts are the purchase itself (the hub resends "
        "them and escalates to the helpdesk on its own), so for those only 'Retry'. A "
        "cancelled SMS stays in the log as failed, with the reason.",
    ),
    "waiting_since": ("Menunggu sejak (WIB)", "Waiting since (WIB)"),
    "why": ("Mengapa menunggu", "Why it waits"),
    "why_sending": ("sedang dikirim oleh", "being sent by"),
    "why_awaiting_result": (
        "diserahkan ke gateway, menunggu hasil",
        "with the gateway, awaiting result",
    ),
    "why_retry_later": ("dicoba lagi pada", "to be retried at"),
    "why_due": ("menunggu modem kosong", "waiting for a free modem"),
    "priority": ("Prioritas", "Priority"),
    "attempts": ("Percobaan", "Attempts"),
    "destination": ("Tujuan", "Destination"),
    "retry": ("Coba lagi", "Retry"),
    "cancel": ("Batalkan", "Cancel"),
    "reason": ("Alasan", "Reason"),
    "not_cancellable": ("tidak dapat dibatalkan", "cannot be cancelled"),
    "outbox_retried": ("SMS ditawarkan ke modem sekarang.", "The SMS is offered to a modem now."),
    "outbox_cancelled": (
        "SMS dibatalkan; di log tercatat gagal dengan alasannya.",
        "The SMS was cancelled; the log shows it failed, with the reason.",
    ),
    "action_refused": ("Tidak dilakukan", "Not done"),
    "reason_required": (
        "Tulis alasannya (3-200 karakter).",
        "Write the reason (3-200 characters).",
    ),
    "resend_title": ("Kirim ulang token", "Resend the token"),
    "resend_intro": (
        "Token yang sama dikirim sekali lagi ke meter. Aman: meter menolak token yang "
        "sudah dipakai. Hanya bila token sudah terbit dan meter belum menjawab.",
        "The same token goes to the meter once more. Safe: a meter refuses a token it "
        "already used. Only while the token is issued and the meter has not answered.",
    ),
    "resend_not_offered": (
        "Kirim ulang tidak tersedia untuk transaksi dengan status ini.",
        "Resending is not offered for a purchase in this state.",
    ),
    "resend_resent": ("Token dikirim ulang ke meter.", "The token was sent to the meter again."),
    "resend_not_allowed": (
        "Tidak dikirim ulang: status transaksi tidak mengizinkan.",
        "Not resent: the purchase's state does not allow it.",
    ),
    "resend_unavailable": (
        "Tidak dikirim ulang: hub tidak terhubung dengan aplikasi ini.",
        "Not resent: the hub is not attached to this app.",
    ),
    "resend_refused": ("Tidak dikirim ulang: hub menolak.", "Not resent: the hub refused."),
    "audited": ("Dicatat di log audit.", "Written to the audit log."),
    "back_to_transaction": ("Kembali ke transaksi", "Back to the purchase"),
    "gateways_title": ("Status gateway dan modem", "Gateway and modem status"),
    "refresh_note": (
        "Halaman ini diperbarui otomatis setiap 30 detik.",
        "This page refreshes itself every 30 seconds.",
    ),
    "modem_state": ("Status modem", "Modem state"),
    "imei": ("IMEI", "IMEI"),
    "sent_24h": ("Terkirim", "Sent"),
    "received_24h": ("Diterima", "Received"),
    "failed_24h": ("Gagal", "Failed"),
    "counters_window": ("Penghitung: 24 jam terakhir.", "Counters: the last 24 hours."),
    "gateway_queue": ("Antrean gateway", "Gateway queue"),
    "unrouted_queue": ("Belum diarahkan ke gateway", "Not routed to a gateway yet"),
    "unknown_modem": ("hanya di log (hub belum tahu statusnya)", "in the log only (no live state)"),
    "ready": ("siap", "ready"),
    "not_ready": ("tidak siap", "not ready"),
}


def _catalogue(index: int) -> dict[str, str]:
    return {key: pair[index] for key, pair in _TEXTS.items()}


_OWN = {lang: _catalogue(i) for i, lang in enumerate(i18n.LANGUAGES)}


def texts(language: str) -> Mapping[str, str]:
    lang = i18n.pick_language(language)
    return {**helpdesk_texts.texts(lang), **_OWN[lang]}


def nav_texts(language: str) -> Mapping[str, str]:
    """The menu's labels of these pages (base.html renders them on every page)."""
    return _OWN[i18n.pick_language(language)]
