//! The coverage check: does every running container of every running pod have a series of
//! each checked metric in Prometheus? By default [`DEFAULT_METRICS`]:
//! `container_cpu_usage_seconds_total` (the mission's) and `container_memory_working_set_bytes`.
//!
//! Two aggregated PromQL queries per metric per poll, whatever the number of pods
//! ([`metric_queries`]); the evaluation of an answer
//! against the pod list is pure ([`PodIndex`], [`Tally`]); [`check_metrics`] polls every metric
//! under one deadline until every pod is covered for every metric or the deadline passes, and
//! reports per metric ([`MetricsReport`]).
//! The single-metric [`check`] (CPU) is what the benchmark measures.

mod answer;
mod evaluate;
mod metric;
mod query;
mod report;

pub use evaluate::{evaluate, evaluate_for, PodIndex, Tally};
pub use metric::{MetricName, MetricNameError, CPU_METRIC, DEFAULT_METRICS, MEMORY_METRIC};
pub use query::{coverage_queries, fetch_metric_series, fetch_series, metric_queries};
pub use report::{CoverageReport, MetricsReport, MissingPod, NamespaceLabel};

use crate::k8s::wait::{poll_with, Backoff, Waited};
use crate::pods::RunningPod;
use crate::prometheus::{PromError, PrometheusClient};
use std::time::{Duration, Instant};

/// Whether the check reads `body` with its own reader, in one pass without a general JSON
/// parser: true for Prometheus's own compact answers (the component tier checks that a real
/// Prometheus writes them so). Any other valid answer is read by serde, to the same result.
pub fn reads_compact(body: &[u8]) -> bool {
    answer::scan_compact(body, |_| {}).is_some()
}

/// How long [`check`] keeps polling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitOptions {
    /// Give up after this long.
    pub deadline: Duration,
    /// Time between polls.
    pub poll_interval: Duration,
}

impl WaitOptions {
    /// A pod needs one scrape after its first CPU use, and a new target one more interval to be
    /// discovered: four intervals plus slack for Prometheus's own start.
    pub fn for_scrape_interval(scrape: Duration) -> Self {
        WaitOptions {
            deadline: scrape * 4 + Duration::from_secs(5),
            poll_interval: (scrape / 2).clamp(Duration::from_millis(200), Duration::from_secs(5)),
        }
    }
}

/// Polls Prometheus until every pod is covered for [`CPU_METRIC`] or `opts.deadline` passes,
/// calling `progress` after each poll. Returns the last report either way.
///
/// # Errors
/// Only when Prometheus cannot answer the query at all (unreachable until the deadline, or an
/// API error).
pub async fn check(
    client: &PrometheusClient,
    pods: &[RunningPod],
    opts: &WaitOptions,
    progress: &mut (dyn FnMut(&CoverageReport) + Send),
) -> Result<CoverageReport, PromError> {
    let metrics = [MetricName::cpu()];
    let mut report = check_metrics(client, pods, &metrics, opts, &mut |r: &MetricsReport| {
        progress(&r.metrics[0])
    })
    .await?;
    Ok(report.metrics.remove(0))
}

/// Polls Prometheus until every pod is covered for every metric of `metrics`, or `opts.deadline`
/// passes (one deadline for all), calling `progress` after each poll. Each poll sends
/// [`metric_queries`] for every metric: two requests per metric, whatever the number of pods.
/// Returns the last poll's report either way, one [`CoverageReport`] per metric in the order
/// given (duplicates checked once).
///
/// # Errors
/// Only when Prometheus cannot answer a query at all (unreachable until the deadline, or an
/// API error).
pub async fn check_metrics(
    client: &PrometheusClient,
    pods: &[RunningPod],
    metrics: &[MetricName],
    opts: &WaitOptions,
    progress: &mut (dyn FnMut(&MetricsReport) + Send),
) -> Result<MetricsReport, PromError> {
    let mut unique: Vec<&MetricName> = Vec::new();
    for m in metrics {
        if !unique.contains(&m) {
            unique.push(m);
        }
    }
    let start = Instant::now();
    let requests_before = client.request_count();
    let mut polls = 0;
    // The pod list, indexed once per check (during the first poll's first request).
    let index = std::sync::OnceLock::new();
    // Shared by every poll's future; only one poll runs at a time.
    let progress = std::sync::Mutex::new(progress);
    // The one polling loop every wait uses: an unreachable Prometheus is retried until the
    // deadline, an API error (bad PromQL) fails at once (`PromError`'s `Transient`).
    let waited = poll_with(opts.deadline, Backoff::constant(opts.poll_interval), || {
        polls += 1;
        let this_poll = polls;
        let unique = &unique;
        let progress = &progress;
        let index = &index;
        async move {
            // Retries of an unreachable Prometheus stay within the check's own deadline.
            let remaining = opts.deadline.saturating_sub(start.elapsed());
            let bounded = client
                .clone()
                .with_retry_deadline(remaining.max(Duration::from_millis(100)));
            let mut reports = Vec::with_capacity(unique.len());
            for metric in unique {
                let sent_before = client.request_count();
                let (mut report, warnings) = poll_once(&bounded, metric, pods, index).await?;
                report.polls = this_poll;
                report.requests = client.request_count() - sent_before;
                report.warnings = warnings;
                reports.push(report);
            }
            let waited_ms = start.elapsed().as_millis() as u64;
            let deadline_ms = opts.deadline.as_millis() as u64;
            for r in &mut reports {
                r.waited_ms = waited_ms;
                r.deadline_ms = deadline_ms;
            }
            let report = MetricsReport {
                metrics: reports,
                waited_ms,
                deadline_ms,
                polls: this_poll,
                requests: client.request_count() - requests_before,
            };
            (progress.lock().expect("one poll at a time"))(&report);
            Ok::<_, PromError>(if report.is_complete() {
                Ok(report)
            } else {
                Err(report)
            })
        }
    })
    .await;
    match waited {
        Ok(report) | Err(Waited::Pending(report)) => Ok(report),
        // The last poll's own retries are only part of the wait (or it was cut off at the
        // deadline): report the check's.
        Err(Waited::Failed(PromError::Unreachable { last_error, .. })) => {
            Err(PromError::Unreachable {
                target: client.describe(),
                waited: start.elapsed(),
                last_error,
            })
        }
        Err(Waited::Failed(e)) => Err(e),
    }
}

/// One poll for one metric: both queries, each answer folded into one [`Tally`] as it is read
/// (nothing kept per series); the bodies are dropped before returning, so a poll's memory is
/// about the size of one metric's answers and the pod index.
///
/// The first poll of a check indexes the pod list while Prometheus computes its first answer
/// (on two cores, the index costs the check nothing it would not wait for anyway); later polls
/// and metrics reuse it.
async fn poll_once<'p>(
    client: &PrometheusClient,
    metric: &MetricName,
    pods: &'p [RunningPod],
    index: &std::sync::OnceLock<PodIndex<'p>>,
) -> Result<(CoverageReport, Vec<String>), PromError> {
    let [modern, legacy] = metric_queries(metric);
    let (first, index) = match index.get() {
        Some(index) => (client.query_response(&modern).await, index),
        None => {
            tokio::join!(client.query_response(&modern), async {
                // The request is polled first and goes out; the index is built while Prometheus
                // answers it.
                tokio::task::yield_now().await;
                index.get_or_init(|| PodIndex::new(pods))
            })
        }
    };
    let first = first?;
    let second = client.query_response(&legacy).await?;
    let mut tally = Tally::new(index);
    let mut warnings = tally.decode(first.status, &first.body)?;
    warnings.extend(tally.decode(second.status, &second.body)?);
    Ok((tally.report(metric), warnings))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn pods() -> Vec<RunningPod> {
        vec![
            RunningPod::new("apps", "web", &["app", "sidecar"]),
            RunningPod::new("kube-system", "coredns-1", &["coredns"]),
        ]
    }

    #[test]
    fn honor_labels_false_reads_exported_namespace() {
        let series = [
            labels(&[
                ("namespace", "kube-system"),
                ("exported_namespace", "apps"),
                ("pod", "web"),
                ("container", "app"),
            ]),
            labels(&[
                ("namespace", "kube-system"),
                ("exported_namespace", "apps"),
                ("pod", "web"),
                ("container", "sidecar"),
            ]),
            labels(&[
                ("namespace", "kube-system"),
                ("exported_namespace", "kube-system"),
                ("pod", "coredns-1"),
                ("container", "coredns"),
            ]),
        ];
        let r = evaluate(&pods(), &series);
        assert!(r.is_complete(), "{r}");
        assert_eq!(
            (
                r.pods_covered,
                r.pods_total,
                r.containers_covered,
                r.containers_total
            ),
            (2, 2, 3, 3)
        );
        assert_eq!(r.namespace_label, NamespaceLabel::ExportedNamespace);
    }

    #[test]
    fn honor_labels_false_does_not_count_the_target_namespace_as_the_pods() {
        // Without exported_namespace handling, `namespace=kube-system` would wrongly match nothing
        // here — and a pod named like a kube-system pod would be matched wrongly. Make sure the
        // series for apps/web is not credited to kube-system/web.
        let pods = vec![RunningPod::new("kube-system", "web", &["app"])];
        let series = [labels(&[
            ("namespace", "kube-system"),
            ("exported_namespace", "apps"),
            ("pod", "web"),
            ("container", "app"),
        ])];
        let r = evaluate(&pods, &series);
        assert!(!r.is_complete());
    }

    #[test]
    fn honor_labels_true_reads_namespace() {
        let series = [
            labels(&[("namespace", "apps"), ("pod", "web"), ("container", "app")]),
            labels(&[
                ("namespace", "apps"),
                ("pod", "web"),
                ("container", "sidecar"),
            ]),
            labels(&[
                ("namespace", "kube-system"),
                ("pod", "coredns-1"),
                ("container", "coredns"),
            ]),
        ];
        let r = evaluate(&pods(), &series);
        assert!(r.is_complete());
        assert_eq!(r.namespace_label, NamespaceLabel::Namespace);
    }

    #[test]
    fn pod_level_and_pause_rows_never_count() {
        let series = [
            // pod-level cgroup row: no container label (Prometheus drops empty labels)
            labels(&[("namespace", "apps"), ("pod", "web")]),
            labels(&[("namespace", "apps"), ("pod", "web"), ("container", "")]),
            // dockershim pause row
            labels(&[("namespace", "apps"), ("pod", "web"), ("container", "POD")]),
            labels(&[
                ("namespace", "apps"),
                ("pod_name", "web"),
                ("container_name", "POD"),
            ]),
            labels(&[("namespace", "apps"), ("pod", "web"), ("container", "app")]),
        ];
        let r = evaluate(&pods(), &series);
        let web = r.missing.iter().find(|m| m.name == "web").unwrap();
        assert_eq!(web.missing_containers, vec!["sidecar"]);
        assert!(!web.no_series_at_all);
        let dns = r.missing.iter().find(|m| m.name == "coredns-1").unwrap();
        assert!(dns.no_series_at_all);
        assert_eq!(r.pods_covered, 0);
        assert_eq!(r.containers_covered, 1);
    }

    #[test]
    fn legacy_pod_name_and_container_name_labels_count() {
        let series = [
            labels(&[
                ("namespace", "apps"),
                ("pod_name", "web"),
                ("container_name", "app"),
            ]),
            // 1.14/1.15 emit both spellings on one series
            labels(&[
                ("namespace", "apps"),
                ("pod", "web"),
                ("pod_name", "web"),
                ("container", "sidecar"),
                ("container_name", "sidecar"),
            ]),
        ];
        let r = evaluate(&pods(), &series);
        assert!(r.missing.iter().all(|m| m.name != "web"), "{r}");
    }

    #[test]
    fn duplicate_series_do_not_inflate_counts() {
        let row = labels(&[("namespace", "apps"), ("pod", "web"), ("container", "app")]);
        let series = [row.clone(), row.clone(), row];
        let r = evaluate(&pods(), &series);
        assert_eq!(r.containers_covered, 1);
    }

    #[test]
    fn missing_pods_are_listed_by_name_sorted_with_node() {
        let mut p = pods();
        p[0].node = Some("kind-worker".into());
        let r = evaluate(&p, &[]);
        assert_eq!(r.namespace_label, NamespaceLabel::Unknown);
        let names: Vec<_> = r
            .missing
            .iter()
            .map(|m| format!("{}/{}", m.namespace, m.name))
            .collect();
        assert_eq!(names, vec!["apps/web", "kube-system/coredns-1"]);
        let text = r.to_string();
        assert!(
            text.contains("NOT covered: 0/2 pods, 0/3 containers"),
            "{text}"
        );
        assert!(
            text.contains(
                "apps/web on node kind-worker: no series for any container (app, sidecar)"
            ),
            "{text}"
        );
    }

    #[test]
    fn mixed_namespace_labels_are_reported() {
        let series = [
            labels(&[
                ("exported_namespace", "apps"),
                ("namespace", "kube-system"),
                ("pod", "web"),
                ("container", "app"),
            ]),
            labels(&[
                ("namespace", "apps"),
                ("pod", "web"),
                ("container", "sidecar"),
            ]),
        ];
        assert_eq!(
            evaluate(&pods(), &series).namespace_label,
            NamespaceLabel::Mixed
        );
    }

    #[test]
    fn report_round_trips_through_json() {
        let r = evaluate(&pods(), &[]);
        let json = r.to_json();
        assert_eq!(json["namespace_label"], "unknown");
        assert_eq!(json["missing"][0]["name"], "web");
        let back: CoverageReport = serde_json::from_value(json).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn the_queries_aggregate_and_filter_pause_and_pod_rows() {
        let [modern, legacy] = coverage_queries();
        assert!(modern.starts_with("count by (namespace, exported_namespace, pod, container)"));
        assert!(modern
            .contains(r#"container_cpu_usage_seconds_total{container!="", container!="POD"}"#));
        assert!(legacy
            .starts_with("count by (namespace, exported_namespace, pod_name, container_name)"));
        assert!(legacy.contains(r#"{container_name!="", container_name!="POD"}"#));
    }

    /// An answer body for `series` in the compact form Prometheus writes, or (`spaced`) the same
    /// JSON with whitespace, which only serde reads.
    fn answer_body(series: &[Vec<(&str, String)>], spaced: bool) -> String {
        let rows: Vec<String> = series
            .iter()
            .map(|labels| {
                let labels: Vec<String> = labels
                    .iter()
                    .map(|(k, v)| format!(r#""{k}":"{v}""#))
                    .collect();
                format!(
                    r#"{{"metric":{{{}}},"value":[1700000000.5,"1"]}}"#,
                    labels.join(",")
                )
            })
            .collect();
        let body = format!(
            r#"{{"status":"success","data":{{"resultType":"vector","result":[{}]}}}}"#,
            rows.join(",")
        );
        if spaced {
            body.replace(',', ", ")
        } else {
            body
        }
    }

    fn decoded(pods: &[RunningPod], bodies: &[&[u8]]) -> (CoverageReport, Vec<String>) {
        let index = PodIndex::new(pods);
        let mut tally = Tally::new(&index);
        let mut warnings = Vec::new();
        for body in bodies {
            warnings.extend(tally.decode(200, body).unwrap());
        }
        (tally.report(&MetricName::cpu()), warnings)
    }

    fn row(pairs: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
        pairs.iter().map(|(k, v)| (*k, v.to_string())).collect()
    }

    #[test]
    fn an_answer_body_decodes_to_the_same_verdict_as_label_maps() {
        let body = br#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"container":"app","endpoint":"https-metrics","exported_namespace":"apps","namespace":"kube-system","pod":"web"},"value":[1700000000.5,"2"]},
            {"metric":{"container":"POD","exported_namespace":"apps","namespace":"kube-system","pod":"web"},"value":[1700000000.5,"1"]},
            {"metric":{"exported_namespace":"apps","namespace":"kube-system","pod":"web"},"value":[1700000000.5,"1"]},
            {"metric":{"container":"coredns","exported_namespace":"kube-system","namespace":"kube-system","pod":"coredns-1"},"value":[1700000000.5,"1"]}
        ]},"warnings":["PromQL info: a warning"]}"#;
        let (report, warnings) = decoded(&pods(), &[body]);
        assert_eq!(warnings, ["PromQL info: a warning"]);
        let decoded_maps = crate::prometheus::decode_envelope::<serde_json::Value>(200, body, "t")
            .unwrap()
            .0;
        let maps: Vec<BTreeMap<String, String>> = decoded_maps["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| serde_json::from_value(s["metric"].clone()).unwrap())
            .collect();
        assert_eq!(report, evaluate(&pods(), &maps));
        assert_eq!(report.missing.len(), 1);
        assert_eq!(report.missing[0].missing_containers, ["sidecar"]);
        assert!(!report.missing[0].no_series_at_all);
        assert_eq!(report.namespace_label, NamespaceLabel::ExportedNamespace);
        // The same answer in Prometheus's compact form (read without serde): the same report.
        let compact: Vec<u8> = std::str::from_utf8(body)
            .unwrap()
            .replace(['\n', ' '], "")
            .replace(r#","warnings":["PromQLinfo:awarning"]"#, "")
            .into_bytes();
        assert!(answer::scan_compact(&compact, |_| {}).is_some());
        assert_eq!(decoded(&pods(), &[&compact]).0, report);
    }

    /// The check's rule written the plain way, independent of the index: the set of
    /// (namespace, pod, container) keys, then each pod's containers looked up in it.
    fn reference_report(pods: &[RunningPod], maps: &[BTreeMap<String, String>]) -> CoverageReport {
        let mut keys = std::collections::HashSet::new();
        let (mut in_ns, mut in_exported) = (false, false);
        for m in maps {
            let get = |k: &str| m.get(k).filter(|v| !v.is_empty()).cloned();
            let Some(container) = get("container").or_else(|| get("container_name")) else {
                continue;
            };
            let Some(pod) = get("pod").or_else(|| get("pod_name")) else {
                continue;
            };
            if container == "POD" {
                continue;
            }
            let ns = match get("exported_namespace") {
                Some(ns) => {
                    in_exported = true;
                    ns
                }
                None => match get("namespace") {
                    Some(ns) => {
                        in_ns = true;
                        ns
                    }
                    None => continue,
                },
            };
            keys.insert((ns, pod, container));
        }
        let mut missing: Vec<MissingPod> = pods
            .iter()
            .filter_map(|p| {
                let absent: Vec<String> = p
                    .containers
                    .iter()
                    .filter(|c| {
                        !keys.contains(&(p.namespace.clone(), p.name.clone(), c.to_string()))
                    })
                    .cloned()
                    .collect();
                (!absent.is_empty()).then(|| MissingPod {
                    namespace: p.namespace.clone(),
                    name: p.name.clone(),
                    node: p.node.clone(),
                    no_series_at_all: !keys
                        .iter()
                        .any(|(ns, pod, _)| *ns == p.namespace && *pod == p.name),
                    missing_containers: absent,
                })
            })
            .collect();
        missing.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        let containers_total: usize = pods.iter().map(|p| p.containers.len()).sum();
        let absent: usize = missing.iter().map(|m| m.missing_containers.len()).sum();
        CoverageReport {
            metric: CPU_METRIC.to_string(),
            pods_total: pods.len(),
            pods_covered: pods.len() - missing.len(),
            containers_total,
            containers_covered: containers_total - absent,
            namespace_label: NamespaceLabel::from_seen(in_ns, in_exported),
            missing,
            waited_ms: 0,
            deadline_ms: 0,
            polls: 0,
            requests: 0,
            warnings: Vec::new(),
        }
    }

    #[test]
    fn compact_and_serde_reading_and_label_maps_agree_on_generated_series() {
        // A small xorshift, so the cases are the same on every run.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        let namespaces = ["", "apps", "kube-system"];
        let pod_names = ["", "web", "coredns-1", "db"];
        let containers = ["", "POD", "app", "sidecar", "coredns", "other"];
        let label_names = [
            "namespace",
            "exported_namespace",
            "pod",
            "pod_name",
            "container",
            "container_name",
            "endpoint",
        ];
        let mut compact_read = 0;
        for case in 0..400 {
            let pods: Vec<RunningPod> = (0..next(4))
                .map(|_| {
                    let mut p = RunningPod::new(
                        namespaces[1 + next(2)],
                        pod_names[1 + next(3)],
                        &[containers[2 + next(4)], containers[2 + next(4)]][..1 + next(2)],
                    );
                    p.node = Some("n".into());
                    p
                })
                .collect();
            let mut series = Vec::new();
            for _ in 0..next(8) {
                let mut labels: Vec<(&str, String)> = Vec::new();
                for name in label_names {
                    if next(3) == 0 {
                        continue;
                    }
                    let value = match name {
                        "namespace" | "exported_namespace" => namespaces[next(3)],
                        "pod" | "pod_name" => pod_names[next(4)],
                        _ => containers[next(6)],
                    };
                    // Now and then a JSON escape for a letter: the same value, read by serde.
                    let value = if next(10) == 0 && !value.is_empty() {
                        format!("\\u{:04x}{}", value.as_bytes()[0], &value[1..])
                    } else {
                        value.to_string()
                    };
                    labels.push((name, value));
                }
                series.push(labels);
            }
            let maps: Vec<BTreeMap<String, String>> = series
                .iter()
                .map(|labels| {
                    labels
                        .iter()
                        .map(|(k, v)| {
                            let v: String = serde_json::from_str(&format!("\"{v}\"")).unwrap();
                            (k.to_string(), v)
                        })
                        .collect()
                })
                .collect();
            let expected = reference_report(&pods, &maps);
            assert_eq!(
                evaluate(&pods, &maps),
                expected,
                "case {case}: pods {pods:?}, series {maps:?}"
            );
            let compact = answer_body(&series, false);
            if answer::scan_compact(compact.as_bytes(), |_| {}).is_some() {
                compact_read += 1;
            }
            for body in [compact, answer_body(&series, true)] {
                let (report, _) = decoded(&pods, &[body.as_bytes()]);
                assert_eq!(report, expected, "case {case}: pods {pods:?}, body {body}");
            }
        }
        // Both readers were exercised.
        assert!((100..400).contains(&compact_read), "{compact_read}");
    }

    #[test]
    fn escaped_values_count_and_stray_series_keep_a_pod_from_reading_as_unscraped() {
        // Go's encoder may escape a character; the value still counts as the series it is.
        let body = answer_body(
            &[
                row(&[
                    ("namespace", r"\u0061pps"),
                    ("pod", "web"),
                    ("container", "app"),
                ]),
                row(&[
                    ("namespace", "kube-system"),
                    ("pod", "coredns-1"),
                    ("container", "other"),
                ]),
            ],
            false,
        );
        let (report, _) = decoded(&pods(), &[body.as_bytes()]);
        let web = report.missing.iter().find(|m| m.name == "web").unwrap();
        assert_eq!(web.missing_containers, ["sidecar"]);
        // coredns-1 has a series, for a container the list does not name.
        let dns = report
            .missing
            .iter()
            .find(|m| m.name == "coredns-1")
            .unwrap();
        assert_eq!(dns.missing_containers, ["coredns"]);
        assert!(!dns.no_series_at_all, "{report}");
        let escaped_stray = answer_body(
            &[row(&[
                ("namespace", "kube-system"),
                ("pod", "coredns-1"),
                ("container", r"\u006fther"),
            ])],
            false,
        );
        let (report, _) = decoded(&pods(), &[escaped_stray.as_bytes()]);
        let dns = report
            .missing
            .iter()
            .find(|m| m.name == "coredns-1")
            .unwrap();
        assert!(!dns.no_series_at_all, "{report}");
        let web = report.missing.iter().find(|m| m.name == "web").unwrap();
        assert!(web.no_series_at_all, "{report}");
    }

    #[test]
    fn a_pod_listed_twice_is_covered_by_the_same_series() {
        let mut twice = pods();
        twice.push(RunningPod::new("apps", "web", &["app", "extra"]));
        let body = answer_body(
            &[
                row(&[("namespace", "apps"), ("pod", "web"), ("container", "app")]),
                row(&[
                    ("namespace", "apps"),
                    ("pod", "web"),
                    ("container", "sidecar"),
                ]),
            ],
            false,
        );
        let (report, _) = decoded(&twice, &[body.as_bytes()]);
        assert_eq!(report.containers_covered, 3, "{report}");
        let names: Vec<_> = report
            .missing
            .iter()
            .map(|m| {
                (
                    m.name.as_str(),
                    m.missing_containers.clone(),
                    m.no_series_at_all,
                )
            })
            .collect();
        assert_eq!(
            names,
            [
                ("web", vec!["extra".to_string()], false),
                ("coredns-1", vec!["coredns".to_string()], true)
            ]
        );
    }

    #[test]
    fn names_of_any_length_are_indexed() {
        // Kubernetes allows 253 bytes; a hand-made pod list may hold anything.
        let long = "p".repeat(70_000);
        let pods = vec![RunningPod::new("apps", &long, &["app", &long])];
        let body = answer_body(
            &[row(&[
                ("namespace", "apps"),
                ("pod", &long),
                ("container", &long),
            ])],
            false,
        );
        let (report, _) = decoded(&pods, &[body.as_bytes()]);
        assert_eq!(report.containers_covered, 1, "{report}");
        assert_eq!(report.missing[0].missing_containers, ["app"]);
    }

    #[test]
    fn legacy_labels_decode_and_merge() {
        let modern = br#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"namespace":"apps","pod":"web","container":"app"},"value":[1,"1"]}]}}"#;
        let legacy = br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"namespace":"apps","pod_name":"web","container_name":"sidecar"},"value":[1,"1"]},{"metric":{"namespace":"kube-system","pod_name":"coredns-1","container_name":"coredns"},"value":[1,"1"]}]}}"#;
        assert!(answer::scan_compact(legacy, |_| {}).is_some());
        let (report, _) = decoded(&pods(), &[modern, legacy]);
        assert!(report.is_complete(), "{report}");
        assert_eq!(report.namespace_label, NamespaceLabel::Namespace);
    }

    #[test]
    fn answers_that_are_not_an_instant_vector_are_errors() {
        let index = PodIndex::new(&[]);
        let mut tally = Tally::new(&index);
        let api_error = br#"{"status":"error","errorType":"bad_data","error":"parse error"}"#;
        match tally.decode(400, api_error) {
            Err(PromError::Api { error_type, .. }) => assert_eq!(error_type, "bad_data"),
            other => panic!("{other:?}"),
        }
        let scalar = br#"{"status":"success","data":{"resultType":"scalar","result":[1,"1"]}}"#;
        let err = tally.decode(200, scalar).unwrap_err().to_string();
        assert!(err.contains("expected an instant vector"), "{err}");
        match tally.decode(502, b"<html>bad gateway</html>") {
            Err(PromError::Http { status: 502, .. }) => {}
            other => panic!("{other:?}"),
        }
        for bad in [
            &br#"{"status":"success","data":{"resultType":"vector"}}"#[..],
            br#"{"status":"success","data":{"resultType":"vector","result":[]}} trailing"#,
            br#"{"data":{"resultType":"vector","result":[]}}"#,
        ] {
            assert!(
                matches!(tally.decode(200, bad), Err(PromError::Decode { .. })),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let no_data = br#"{"status":"success","data":null}"#;
        let err = tally.decode(200, no_data).unwrap_err().to_string();
        assert!(err.contains("without data"), "{err}");
    }

    #[test]
    fn metric_names_follow_the_data_model() {
        for ok in [CPU_METRIC, MEMORY_METRIC, "_x", ":recording:rule", "a1"] {
            assert_eq!(MetricName::new(ok).unwrap().as_str(), ok);
        }
        assert_eq!(MetricName::new(""), Err(MetricNameError::Empty));
        for (bad, found, position) in [
            ("1abc", '1', 0),
            ("container-cpu", '-', 9),
            ("cpu{container=\"x\"}", '{', 3),
            ("mé", 'é', 1),
            ("a b", ' ', 1),
        ] {
            let err = MetricName::new(bad).unwrap_err();
            assert_eq!(
                err,
                MetricNameError::Invalid {
                    name: bad.into(),
                    found,
                    position
                }
            );
            let text = err.to_string();
            assert!(text.contains("[a-zA-Z_:][a-zA-Z0-9_:]*"), "{text}");
            assert!(text.contains(&format!("{bad:?}")), "{text}");
        }
        // Deserialising checks too (matrix cells, coverage.json).
        assert!(serde_json::from_str::<MetricName>(r#""bad-name""#).is_err());
        assert_eq!(
            MetricName::defaults()
                .iter()
                .map(MetricName::as_str)
                .collect::<Vec<_>>(),
            DEFAULT_METRICS
        );
    }

    #[test]
    fn metric_lists_parse_trim_and_dedupe() {
        let l = MetricName::parse_list(" a , b,a").unwrap();
        assert_eq!(
            l,
            [MetricName::new("a").unwrap(), MetricName::new("b").unwrap()]
        );
        assert_eq!(MetricName::parse_list(""), Err(MetricNameError::Empty));
        assert!(MetricName::parse_list("a,,b").is_err());
        assert!(MetricName::parse_list("a,b-c").is_err());
    }

    #[test]
    fn the_queries_are_parameterised_by_metric() {
        let m = MetricName::new(MEMORY_METRIC).unwrap();
        let [modern, legacy] = metric_queries(&m);
        assert!(modern
            .contains(r#"container_memory_working_set_bytes{container!="", container!="POD"}"#));
        assert!(legacy.contains(
            r#"container_memory_working_set_bytes{container_name!="", container_name!="POD"}"#
        ));
        assert_eq!(coverage_queries(), metric_queries(&MetricName::cpu()));
        let r = evaluate_for(&m, &pods(), &[]);
        assert_eq!(r.metric, MEMORY_METRIC);
    }

    /// Prometheus as a script: answers each coverage query from per-metric rows, so the poll
    /// loop's requests can be counted without a network.
    struct PerMetric {
        rows: BTreeMap<&'static str, &'static str>,
        queries: std::sync::Mutex<Vec<String>>,
    }

    impl crate::prometheus::Transport for PerMetric {
        fn get<'a>(
            &'a self,
            path: &'a str,
        ) -> futures::future::BoxFuture<
            'a,
            Result<crate::prometheus::HttpResponse, crate::prometheus::TransportError>,
        > {
            self.queries.lock().unwrap().push(path.to_string());
            // Only the modern query gets rows; the legacy one (pod_name) answers empty.
            let legacy = path.contains("pod_name");
            let rows = self
                .rows
                .iter()
                .find(|(m, _)| path.contains(*m))
                .filter(|_| !legacy)
                .map(|(_, r)| *r)
                .unwrap_or("");
            let body = format!(
                r#"{{"status":"success","data":{{"resultType":"vector","result":[{rows}]}}}}"#
            );
            Box::pin(async move {
                Ok(crate::prometheus::HttpResponse {
                    status: 200,
                    body: body.into(),
                })
            })
        }
        fn describe(&self) -> String {
            "per-metric script".into()
        }
    }

    const ALL: &str = r#"{"metric":{"namespace":"apps","pod":"web","container":"app"},"value":[1,"1"]},
        {"metric":{"namespace":"apps","pod":"web","container":"sidecar"},"value":[1,"1"]},
        {"metric":{"namespace":"kube-system","pod":"coredns-1","container":"coredns"},"value":[1,"1"]}"#;
    const NO_SIDECAR: &str = r#"{"metric":{"namespace":"apps","pod":"web","container":"app"},"value":[1,"1"]},
        {"metric":{"namespace":"kube-system","pod":"coredns-1","container":"coredns"},"value":[1,"1"]}"#;

    fn scripted(
        rows: &[(&'static str, &'static str)],
    ) -> (std::sync::Arc<PerMetric>, PrometheusClient) {
        let t = std::sync::Arc::new(PerMetric {
            rows: rows.iter().copied().collect(),
            queries: Default::default(),
        });
        (
            t.clone(),
            PrometheusClient::with_transport(t, Duration::from_secs(30)),
        )
    }

    #[tokio::test]
    async fn each_metric_is_reported_and_costs_two_requests_per_poll() {
        let (t, client) = scripted(&[(CPU_METRIC, ALL), (MEMORY_METRIC, NO_SIDECAR)]);
        let opts = WaitOptions {
            deadline: Duration::from_millis(350),
            poll_interval: Duration::from_millis(100),
        };
        let mut seen_polls = Vec::new();
        let report = check_metrics(
            &client,
            &pods(),
            &MetricName::defaults(),
            &opts,
            &mut |r: &MetricsReport| seen_polls.push((r.polls, r.requests)),
        )
        .await
        .unwrap();
        assert!(!report.is_complete(), "{report}");
        assert_eq!(report.metric_names(), DEFAULT_METRICS);
        assert!(report.get(CPU_METRIC).unwrap().is_complete());
        let mem = report.get(MEMORY_METRIC).unwrap();
        assert_eq!(mem.missing.len(), 1);
        assert_eq!(mem.missing[0].name, "web");
        assert_eq!(mem.missing[0].missing_containers, ["sidecar"]);
        let incomplete: Vec<_> = report.incomplete().map(|r| r.metric.as_str()).collect();
        assert_eq!(incomplete, [MEMORY_METRIC]);
        // Constant cost: 2 requests per metric per poll, counted by the client.
        assert!(report.polls >= 2, "{report}");
        assert_eq!(report.requests, 4 * report.polls as u64);
        assert_eq!(client.request_count(), report.requests);
        assert_eq!(t.queries.lock().unwrap().len() as u64, report.requests);
        for r in &report.metrics {
            assert_eq!(
                r.requests, 2,
                "{} sent per poll for {}",
                r.requests, r.metric
            );
            assert_eq!(r.polls, report.polls);
        }
        for (i, (polls, requests)) in seen_polls.iter().enumerate() {
            assert_eq!((*polls, *requests), (i as u32 + 1, 4 * (i as u64 + 1)));
        }
        // The cost does not grow with the pods.
        let many: Vec<RunningPod> = (0..500)
            .map(|i| RunningPod::new("apps", &format!("p{i}"), &["a", "b"]))
            .collect();
        let (_, client) = scripted(&[(CPU_METRIC, ALL), (MEMORY_METRIC, ALL)]);
        let one = WaitOptions {
            deadline: Duration::from_millis(10),
            poll_interval: Duration::from_millis(100),
        };
        let r = check_metrics(&client, &many, &MetricName::defaults(), &one, &mut |_| {})
            .await
            .unwrap();
        // One poll, then one more at the deadline (`poll_until` always looks last at the
        // deadline): 4 requests each, whatever the number of pods.
        assert!((1..=2).contains(&r.polls), "{r}");
        assert_eq!(r.requests, 4 * r.polls as u64);
    }

    #[tokio::test]
    async fn all_metrics_covered_stops_at_the_first_poll_and_duplicates_are_checked_once() {
        let (_, client) = scripted(&[(CPU_METRIC, ALL), (MEMORY_METRIC, ALL)]);
        let opts = WaitOptions {
            deadline: Duration::from_secs(10),
            poll_interval: Duration::from_secs(5),
        };
        let metrics = [
            MetricName::cpu(),
            MetricName::new(MEMORY_METRIC).unwrap(),
            MetricName::cpu(),
        ];
        let report = check_metrics(&client, &pods(), &metrics, &opts, &mut |_| {})
            .await
            .unwrap();
        assert!(report.is_complete(), "{report}");
        assert_eq!((report.polls, report.requests), (1, 4));
        assert_eq!(report.metrics.len(), 2);
        // The single-metric check is the CPU one, two requests.
        let cpu = check(&client, &pods(), &opts, &mut |_| {}).await.unwrap();
        assert_eq!((cpu.metric.as_str(), cpu.requests), (CPU_METRIC, 2));
    }

    #[test]
    fn a_metrics_report_renders_per_metric_and_round_trips() {
        let cpu = evaluate(&pods(), &[]);
        let mut mem = evaluate_for(&MetricName::new(MEMORY_METRIC).unwrap(), &pods(), &[]);
        mem.missing.truncate(1);
        let report = MetricsReport {
            metrics: vec![cpu, mem],
            waited_ms: 1500,
            deadline_ms: 45000,
            polls: 2,
            requests: 8,
        };
        let text = report.to_string();
        assert!(
            text.starts_with("NOT covered: 0/2 metrics have a series for every running container (1.5s, 2 polls, 8 requests)"),
            "{text}"
        );
        assert!(
            text.contains("containers have container_cpu_usage_seconds_total"),
            "{text}"
        );
        assert!(
            text.contains("containers have container_memory_working_set_bytes"),
            "{text}"
        );
        let json = report.to_json();
        assert_eq!(json["metrics"][1]["metric"], MEMORY_METRIC);
        let back: MetricsReport = serde_json::from_value(json).unwrap();
        assert_eq!(back, report);
        assert!(!MetricsReport::from(evaluate(&[], &[])).metrics.is_empty());
        let empty = MetricsReport {
            metrics: vec![],
            waited_ms: 0,
            deadline_ms: 0,
            polls: 0,
            requests: 0,
        };
        assert!(!empty.is_complete(), "nothing checked is not covered");
    }
}
