//! The Web Service SDK over HTTPS, with service accounts.
