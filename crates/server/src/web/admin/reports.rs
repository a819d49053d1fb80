//! Reports (`reports.read`): sign-ins by day, method and outcome; users by state now; users
//! locked, blocked for fraud and bypassed by day. Charts are SVG drawn here, each followed by
//! its figures as a table.

use super::chart::{self, Chart, FAILURE, PALETTE, Series};
use super::{Admin, AdminPage, AdminRoutes, Need, Section, page};
use crate::service::reports::{REPORT_DAYS, Report, sign_in_method};
use crate::store::{DAY, DayCount};
use crate::web::i18n::Translator;
use crate::web::{AppState, WebError};
use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use std::collections::BTreeMap;
use twofold_engine::admin::Permission;

const DEFAULT_DAYS: i64 = 30;

pub(super) fn routes(r: AdminRoutes) -> AdminRoutes {
    r.get(
        "/admin/reports",
        Need::Permission(Permission::ReportsRead),
        reports_get,
    )
}

#[derive(Debug, Default, Deserialize)]
struct Params {
    #[serde(default)]
    days: String,
}

/// A table of figures: a label a row, a value a column.
struct Table {
    id: &'static str,
    caption: String,
    /// The heading of the rows' labels, then one a column.
    columns: Vec<String>,
    rows: Vec<(String, Vec<i64>)>,
}

struct Figure {
    heading: String,
    /// The chart's SVG, escaped where it holds text.
    svg: String,
    table: Table,
}

#[derive(Template)]
#[template(path = "admin/reports.html")]
struct ReportsTemplate {
    admin: AdminPage,
    days: String,
    days_error: Option<String>,
    period: String,
    figures: Vec<Figure>,
}

/// `YYYY-MM-DD` of a day counted from 1970-01-01.
fn day_label(day: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::OffsetDateTime::from_unix_timestamp(day * DAY)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| day.to_string())
}

/// The counts of `rows` a day, from `first` for `days` days.
fn by_day(rows: &[DayCount], first: i64, days: i64) -> Vec<i64> {
    let mut values = vec![0; usize::try_from(days).unwrap_or(0)];
    for row in rows {
        if let Some(slot) = usize::try_from(row.day - first)
            .ok()
            .and_then(|i| values.get_mut(i))
        {
            *slot += row.count;
        }
    }
    values
}

/// The methods the log names (`Via::as_str`) that the catalogue translates.
const METHODS: [&str; 9] = [
    "trusted_ip",
    "one_time_bypass",
    "oath",
    "oath_fallback",
    "security_questions",
    "enrollment",
    "phone_call",
    "sms",
    "mobile_app",
];

/// A method's name as the page shows it (as the log writes it when it is not known).
fn method_label(t: &Translator, method: &str) -> String {
    if METHODS.contains(&method) {
        t.t(&format!(
            "admin-reports-method-{}",
            method.replace('_', "-")
        ))
    } else {
        method.to_owned()
    }
}

fn table_of(
    id: &'static str,
    caption: String,
    first_column: String,
    categories: &[String],
    series: &[Series],
) -> Table {
    Table {
        id,
        caption,
        columns: std::iter::once(first_column)
            .chain(series.iter().map(|s| s.label.clone()))
            .collect(),
        rows: categories
            .iter()
            .enumerate()
            .map(|(i, c)| {
                (
                    c.clone(),
                    series
                        .iter()
                        .map(|s| s.values.get(i).copied().unwrap_or(0))
                        .collect(),
                )
            })
            .collect(),
    }
}

fn figures(t: &Translator, report: &Report) -> Vec<Figure> {
    let days: Vec<String> = (0..report.days)
        .map(|i| day_label(report.first_day + i))
        .collect();
    let day_column = t.t("admin-reports-day");

    // Sign-ins: a stacked bar a day, a segment a method, failures on top.
    let mut methods: BTreeMap<String, Vec<DayCount>> = BTreeMap::new();
    for row in &report.sign_ins {
        methods
            .entry(sign_in_method(row.key.as_deref()).to_owned())
            .or_default()
            .push(row.clone());
    }
    let mut sign_ins: Vec<Series> = methods
        .iter()
        .zip(PALETTE.iter().cycle())
        .map(|((method, rows), colour)| Series {
            label: t.t1(
                "admin-reports-succeeded",
                "method",
                &method_label(t, method),
            ),
            colour,
            values: by_day(rows, report.first_day, report.days),
        })
        .collect();
    sign_ins.push(Series {
        label: t.t("admin-reports-failed"),
        colour: FAILURE,
        values: by_day(&report.failed_sign_ins, report.first_day, report.days),
    });
    let sign_in_chart = Chart {
        id: "chart-sign-ins".into(),
        title: t.t("admin-reports-sign-ins"),
        description: t.t("admin-reports-sign-ins-desc"),
        no_data: t.t("admin-reports-no-data"),
        categories: days.clone(),
        series: sign_ins,
    };

    // Users now: one bar a state.
    let states = [
        (t.t("admin-reports-enrolled"), report.users.enrolled),
        (t.t("admin-reports-not-enrolled"), report.users.not_enrolled),
        (t.t("admin-reports-disabled"), report.users.disabled),
    ];
    let users_chart = Chart {
        id: "chart-users".into(),
        title: t.t("admin-reports-users"),
        description: t.t("admin-reports-users-desc"),
        no_data: t.t("admin-reports-no-data"),
        categories: states.iter().map(|s| s.0.clone()).collect(),
        series: vec![Series {
            label: t.t("admin-reports-users-count"),
            colour: PALETTE[0],
            values: states.iter().map(|s| s.1).collect(),
        }],
    };
    let users_table = Table {
        id: "table-users",
        caption: t.t("admin-reports-users"),
        columns: vec![t.t("admin-reports-state"), t.t("admin-reports-users-count")],
        rows: states.iter().map(|(l, n)| (l.clone(), vec![*n])).collect(),
    };

    // Locked, blocked for fraud, bypassed: a line each.
    let trouble = vec![
        Series {
            label: t.t("admin-reports-locked"),
            colour: FAILURE,
            values: by_day(&report.hard_locked, report.first_day, report.days),
        },
        Series {
            label: t.t("admin-reports-fraud"),
            colour: PALETTE[2],
            values: by_day(&report.fraud_blocked, report.first_day, report.days),
        },
        Series {
            label: t.t("admin-reports-bypassed"),
            colour: PALETTE[0],
            values: by_day(&report.bypassed, report.first_day, report.days),
        },
    ];
    let trouble_chart = Chart {
        id: "chart-trouble".into(),
        title: t.t("admin-reports-trouble"),
        description: t.t("admin-reports-trouble-desc"),
        no_data: t.t("admin-reports-no-data"),
        categories: days.clone(),
        series: trouble,
    };

    vec![
        Figure {
            heading: sign_in_chart.title.clone(),
            svg: chart::stacked_bars(&sign_in_chart),
            table: table_of(
                "table-sign-ins",
                sign_in_chart.title.clone(),
                day_column.clone(),
                &days,
                &sign_in_chart.series,
            ),
        },
        Figure {
            heading: users_chart.title.clone(),
            svg: chart::stacked_bars(&users_chart),
            table: users_table,
        },
        Figure {
            heading: trouble_chart.title.clone(),
            svg: chart::lines(&trouble_chart),
            table: table_of(
                "table-trouble",
                trouble_chart.title.clone(),
                day_column,
                &days,
                &trouble_chart.series,
            ),
        },
    ]
}

async fn reports_get(
    State(state): State<AppState>,
    admin: Admin,
    query: Result<Query<Params>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, WebError> {
    let t = admin.t();
    let asked = query.map(|Query(q)| q.days).unwrap_or_default();
    let (days, days_error) = match asked.trim() {
        "" => (DEFAULT_DAYS, None),
        s => match s.parse::<i64>() {
            Ok(n) if REPORT_DAYS.contains(&n) => (n, None),
            _ => (DEFAULT_DAYS, Some(t.t("admin-reports-days-invalid"))),
        },
    };
    let report = admin.service(&state)?.report(days).await?;
    let period = t.t1("admin-reports-period", "days", &report.days.to_string());
    let status = if days_error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let template = ReportsTemplate {
        admin: admin.page(&state, Section::Reports),
        days: if days_error.is_some() {
            asked
        } else {
            days.to_string()
        },
        days_error,
        period,
        figures: figures(&t, &report),
    };
    page(status, &template)
}
