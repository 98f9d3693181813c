//! SIP overload control (RFC 7339) toward an operator's SBC on loopback: a SIPp caller whose
//! Via carries `oc`, against a platform with room for a few calls: the national capacity at its
//! least (one guaranteed call per département) and nothing in the pool.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

/// One final answer to an INVITE the SBC received: its status, and the `oc` and `oc-validity` of its Via.
#[derive(Debug)]
struct Answer {
    status: u16,
    oc: Option<u8>,
    validity: Option<u64>,
    algo_loss: bool,
}

/// The final answers in SIPp's message log, in the order received.
fn answers(dir: &Path) -> Vec<Answer> {
    let log: String = std::fs::read_dir(dir)
        .expect("sipp dir")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with("_messages.log"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect();
    log.split("message received")
        .skip(1)
        .filter_map(|block| {
            let message = block.split_once("\n\n")?.1;
            let status: u16 = message.strip_prefix("SIP/2.0 ")?.get(..3)?.parse().ok()?;
            let invite = message
                .lines()
                .any(|l| l.starts_with("CSeq:") && l.contains("INVITE"));
            if status < 200 || !invite {
                return None;
            }
            let via = message.lines().find(|l| l.starts_with("Via:"))?;
            let param = |name: &str| {
                via.split(';').find_map(|p| {
                    p.trim()
                        .strip_prefix(&format!("{name}="))
                        .map(str::to_owned)
                })
            };
            Some(Answer {
                status,
                oc: param("oc").and_then(|v| v.parse().ok()),
                validity: param("oc-validity").and_then(|v| v.parse().ok()),
                algo_loss: param("oc-algo").as_deref() == Some("\"loss\""),
            })
        })
        .collect()
}

fn calls(platform: &Platform, name: &str, rate: u32, count: u32, hold_ms: u32) -> Vec<Answer> {
    let dir = platform.dir.path().join(name);
    let status = sipp(&dir)
        .args(["-sf", &format!("{SIPP_DIR}/caller-overload-control.xml")])
        .args(["-r", &rate.to_string(), "-m", &count.to_string()])
        .args(["-d", &hold_ms.to_string(), "-trace_msg"])
        .args(["-p", &free_port().to_string(), "-mi", "127.0.0.1"])
        .args(["-mp", &free_media_port().to_string()])
        .arg(format!("127.0.0.1:{}", platform.sip))
        .status()
        .expect("sipp runs");
    assert!(
        status.success(),
        "{name}: sipp {status}\n{}",
        platform.log()
    );
    answers(&dir)
}

fn loss_metric(platform: &Platform) -> Option<f64> {
    platform
        .metrics()
        .lines()
        .find(|l| l.starts_with("secourir_overload_loss_percent "))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
}

/// Full, the platform tells the SBC the share of new calls to send elsewhere, in the Via of
/// each answer (refusals included); with room again, it tells it to stop.
#[test]
fn an_sbc_applying_overload_control_is_told_the_share_to_send_elsewhere() {
    let dir = tempfile::tempdir().expect("dir");
    let small = shipped_with_line(dir.path(), "small.toml", "capacity = ", "capacity = 101");
    let text = std::fs::read_to_string(&small)
        .expect("config")
        .lines()
        .map(|l| {
            if l.starts_with("reserved_share = ") {
                "reserved_share = 0.0"
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&small, text).expect("config");
    let platform = Platform::with_config(&small);

    // 40 calls in 4 s, each held 5 s: those the zone has room for are carried, the others
    // refused for want of room.
    let surge = calls(&platform, "surge", 10, 40, 5_000);
    assert_eq!(surge.len(), 40, "{surge:?}");
    let refused: Vec<&Answer> = surge.iter().filter(|a| a.status == 503).collect();
    let carried = surge.iter().filter(|a| a.status == 200).count();
    assert!(carried >= 1 && carried + refused.len() == 40, "{surge:?}");
    assert!(refused.len() >= 10, "{surge:?}");
    for answer in &surge {
        assert!(answer.oc.is_some() && answer.algo_loss, "{answer:?}");
    }
    // Once five calls are known, each refusal asks for a share, valid 5 s, that grows with
    // the refusals.
    for answer in surge[5..].iter().filter(|a| a.status == 503) {
        assert!(
            answer.oc.unwrap_or(0) > 0 && answer.validity == Some(5_000),
            "{answer:?}"
        );
    }
    let highest = surge.iter().filter_map(|a| a.oc).max().unwrap_or(0);
    assert!(highest >= 50, "the share did not grow: {surge:?}");
    println!(
        "overload control: {carried} carried, {} refused, share asked up to {highest}%",
        refused.len()
    );

    // Room again once the held calls end and the refusals leave the 10 s window.
    let deadline = Instant::now() + Duration::from_secs(30);
    while loss_metric(&platform) != Some(0.0) {
        assert!(
            Instant::now() < deadline,
            "the share asked never went back to 0: {:?}",
            loss_metric(&platform)
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let calm = calls(&platform, "calm", 1, 1, 500);
    assert_eq!(calm.len(), 1, "{calm:?}");
    assert_eq!(calm[0].status, 200, "{calm:?}");
    assert_eq!(calm[0].oc, Some(0), "{calm:?}");
    assert_eq!(calm[0].validity, Some(0), "{calm:?}");
}
