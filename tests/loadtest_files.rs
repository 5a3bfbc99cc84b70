//! The load-test files stay in step with the API: the Artillery drop calls real routes with
//! valid bodies, and the Express peer and the wrk script exercise the same purchase path.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

fn read(file: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(file)).unwrap()
}

#[test]
fn the_artillery_drop_warms_up_then_spikes_against_real_routes_and_counts_every_answer() {
    let yaml: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&read("loadtest/artillery/flash-sale.yml")).unwrap();
    let config = &yaml["config"];
    let phases = |env: &str| -> Vec<String> {
        config["environments"][env]["phases"]
            .as_sequence()
            .unwrap_or_else(|| panic!("environment {env} has phases"))
            .iter()
            .map(|phase| phase["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(&phases("drop")[..2], ["warm-up", "spike"]);
    assert_eq!(phases("smoke"), ["smoke"]);
    // Top-level phases would be merged entry by entry into each environment's.
    assert!(config["phases"].is_null());
    // The verdict counts purchases by code: the processor must be there and every purchase
    // must go through it.
    let processor = config["processor"].as_str().unwrap();
    let source = read(&format!(
        "loadtest/artillery/{}",
        processor.trim_start_matches("./")
    ));
    assert!(source.contains("function countAnswer"));
    assert!(
        config["plugins"]["expect"].is_null(),
        "expect prints every request"
    );

    let mut urls = Vec::new();
    let mut buys_with_unique_user = false;
    for scenario in yaml["scenarios"].as_sequence().unwrap() {
        let mut steps: Vec<&serde_yaml_ng::Value> =
            scenario["flow"].as_sequence().unwrap().iter().collect();
        while let Some(step) = steps.pop() {
            if let Some(inner) = step["loop"].as_sequence() {
                steps.extend(inner);
            }
            for method in ["get", "post"] {
                if let Some(url) = step[method]["url"].as_str() {
                    urls.push((method, url.to_owned()));
                }
            }
            if let Some(user) = step["post"]["json"]["userId"].as_str() {
                buys_with_unique_user = user.contains("$uuid");
                assert_eq!(step["post"]["afterResponse"], "countAnswer");
                assert!(step["post"]["headers"]["Idempotency-Key"].is_string());
            }
        }
    }
    for (method, url) in &urls {
        assert!(
            [("get", "/api/sale/status"), ("post", "/api/sale/purchase")]
                .contains(&(*method, url.as_str())),
            "{method} {url} is not a route of the service"
        );
    }
    assert!(
        buys_with_unique_user,
        "each virtual user buys with a userId of its own"
    );
}

#[test]
fn the_express_peer_and_the_wrk_script_run_the_same_purchase() {
    let baseline = read("loadtest/baseline/server.js");
    for script in ["purchase.lua", "status.lua", "user.lua", "create_sale.lua"] {
        assert!(
            baseline.contains(&format!("LUA('{script}')")),
            "the peer loads lua/{script}"
        );
    }
    assert!(baseline.contains("cluster.fork()") && baseline.contains("enableAutoPipelining: true"));
    let package: serde_json::Value =
        serde_json::from_str(&read("loadtest/baseline/package.json")).unwrap();
    assert!(
        package["dependencies"]["express"].is_string()
            && package["dependencies"]["ioredis"].is_string()
    );
    // The peer and the ceiling pass the purchase script every key and argument a batch of
    // one purchase takes: the fixed KEYS and ARGV, then two keys per purchase, the purchase as
    // an item of ARGV[6] and its reservation secret in ARGV[7].
    let script = read("lua/purchase.lua");
    let count = |prefix: &str| {
        (1..=20)
            .filter(|n| script.contains(&format!("{prefix}[{n}]")))
            .max()
            .unwrap_or(0)
    };
    assert!(script.contains("KEYS[6 + 2 * i]") && script.contains("KEYS[7 + 2 * i]"));
    assert!(script.contains("unpack_purchases('Bc0Bc0Bc0BBc0', n, ARGV[6])"));
    let (keys, args) = (count("KEYS") + 2, count("ARGV"));
    assert_eq!(args, 7, "ARGV[7] is the last argument");
    // ARGV[4] is '1' only when the service WAITs for replicas, which neither the peer nor the
    // ceiling does: both pass '0', as flashsale does by default.
    assert!(script.contains("ARGV[4] == '1'"));
    assert!(
        baseline.contains(&format!("numberOfKeys: {keys}, lua: LUA('purchase.lua')")),
        "the peer passes {keys} keys"
    );
    assert!(
        baseline.contains("purchaseItem(userId, token, rid), secret);")
            && baseline
                .contains("[text(userId), text(token), text(rid), Buffer.from([1]), text('0')]"),
        "the peer passes the purchase as the script's item, then its secret"
    );
    for (file, sha) in [
        ("loadtest/bench/run.sh", "evalsha \"$PURCHASE_SHA\" "),
        ("loadtest/bench/cluster.sh", "evalsha \"$sha\" "),
    ] {
        let bench = read(file);
        let ceiling = bench.split(sha).nth(1).unwrap();
        assert!(
            ceiling.starts_with(&format!("{keys} ")),
            "{file}: the ceiling passes {keys} keys"
        );
        let ceiling = ceiling.split(['|', '>']).next().unwrap();
        assert!(
            ceiling.contains(r#""$(ceiling_item "#),
            "{file}: the ceiling's purchase is lib.sh's item"
        );
        assert_eq!(
            shell_words(ceiling).len(),
            1 + keys + args,
            "{file}: the ceiling passes {keys} keys and {args} args"
        );
    }
    // lib.sh's item is the service's, once redis-benchmark has put its 12 digits in.
    let item = std::process::Command::new("bash")
        .args(["-c", ". loadtest/bench/lib.sh && ceiling_item ceiling"])
        .output()
        .unwrap();
    assert!(item.status.success());
    let mut expected = Vec::new();
    flashsale::store::scripts::put_decide_item(
        &mut expected,
        "u000000000042",
        "0123456789abcdef",
        "ceiling",
        1,
        0,
    );
    let item = String::from_utf8(item.stdout)
        .unwrap()
        .replace("__rand_int__", "000000000042");
    assert_eq!(item.as_bytes(), &expected[..]);
    let wrk = read("loadtest/bench/purchase.lua");
    assert!(wrk.contains("\"/api/sale/purchase\"") && wrk.contains("application/json"));
}

/// The words of a shell command line as the shell splits them: whitespace outside double
/// quotes separates, a line continuation is not a word, `"…"$'…'` is one word.
fn shell_words(line: &str) -> Vec<String> {
    let (mut words, mut word, mut quoted) = (Vec::new(), String::new(), false);
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !word.is_empty() && word != "\\" {
                    words.push(std::mem::take(&mut word));
                }
                word.clear();
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() && word != "\\" {
        words.push(word);
    }
    words
}
