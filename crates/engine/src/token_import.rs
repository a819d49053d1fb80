//! Reading third-party (hardware) OATH token files: PSKC (RFC 6030) and CSV.
