//! The stand-in's calls, texts and webhooks against the site: TwiML followed, status
//! callbacks, inbound texts, a load balancer.

use super::*;

const VOICE: &str = r##"<?xml version="1.0" encoding="UTF-8"?>
<Response>
  <Gather action="/hooks/twilio/gather/au_5" method="POST" numDigits="10" finishOnKey="#" timeout="8" actionOnEmptyResult="true">
    <Say language="fr-FR">Tapez votre code puis dièse.</Say>
  </Gather>
  <Say language="fr-FR">Rien entendu.</Say>
</Response>"##;

const GATHERED: &str = r##"<Response><Say language="fr-FR">Merci &amp; au revoir.</Say><Pause length="1"/><Hangup/><Say>never said</Say></Response>"##;

#[tokio::test]
async fn the_stand_in_follows_twiml_with_signatures_the_product_accepts() {
    let stand_in = TwilioStandIn::start(SID, TOKEN).await;
    let site = Site::start(
        TOKEN,
        &[
            ("/hooks/twilio/voice/au_5", VOICE),
            ("/hooks/twilio/gather/au_5", GATHERED),
        ],
    )
    .await;
    stand_in.on_call(
        "+33612345678",
        CallScenario::Answer {
            keys: vec!["1234#9".into()],
        },
    );
    let twilio = channel(&config(&stand_in, site.base()));

    let id = twilio
        .call(&phone_call("au_5", "+33612345678", None))
        .await
        .unwrap();
    let transcript = stand_in.wait_call_done(id.as_str(), WAIT).await;

    assert_eq!(
        transcript.said(),
        [
            (
                "fr-FR".to_owned(),
                "Tapez votre code puis dièse.".to_owned()
            ),
            ("fr-FR".to_owned(), "Merci & au revoir.".to_owned()),
        ]
    );
    assert_eq!(transcript.gathered(), [("1234".to_owned(), "#".to_owned())]);
    assert!(transcript.hung_up());
    assert_eq!(
        transcript.call_statuses(),
        ["initiated", "ringing", "in-progress", "completed"]
    );
    assert!(
        transcript.webhook_statuses().iter().all(|s| *s == 200),
        "{transcript:?}"
    );

    // Every webhook was signed as the product checks it.
    let received = site.received();
    assert_eq!(received.len(), 6, "{received:?}");
    assert!(received.iter().all(|r| r.signature_valid), "{received:?}");
    let voice = &site.received_at("/hooks/twilio/voice/")[0];
    for (name, value) in [
        ("AccountSid", SID),
        ("CallSid", id.as_str()),
        ("CallStatus", "in-progress"),
        ("Direction", "outbound-api"),
        ("From", FROM),
        ("To", "+33612345678"),
        ("Called", "+33612345678"),
        ("Caller", FROM),
        ("ApiVersion", "2010-04-01"),
    ] {
        assert_eq!(voice.get(name), Some(value), "{name}: {voice:?}");
    }
    let gathered = &site.received_at("/hooks/twilio/gather/")[0];
    assert_eq!(gathered.get("Digits"), Some("1234"));
    assert_eq!(gathered.get("FinishedOnKey"), Some("#"));
    let completed = site
        .received_at("/hooks/twilio/call-status/")
        .into_iter()
        .find(|r| r.get("CallStatus") == Some("completed"))
        .unwrap();
    assert!(completed.get("CallDuration").is_some(), "{completed:?}");

    // The check the site makes is a real one: the same webhook with one digit changed, or
    // signed with another token, is refused.
    let mut forged = gathered.params.clone();
    for (name, value) in &mut forged {
        if name == "Digits" {
            *value = "0".into();
        }
    }
    let url = site.url("/hooks/twilio/gather/au_5");
    let original_signature = stand_in.sign(&url, &gathered.params);
    let (status, _) = stand_in
        .post_with_signature(&url, &forged, Some(&original_signature))
        .await;
    assert_eq!(status, 403);
    let other = TwilioStandIn::start(SID, "another-token").await;
    let (status, _) = other.post_signed(&url, &gathered.params).await;
    assert_eq!(status, 403);
    let (status, _) = stand_in
        .post_with_signature(&url, &gathered.params, None)
        .await;
    assert_eq!(status, 403);
    let (status, _) = stand_in.post_signed(&url, &gathered.params).await;
    assert_eq!(status, 200);
}

const FIRST: &str = r##"<Response>
  <Gather action="/hooks/twilio/gather/au_6" finishOnKey="#"><Say>Press pound.</Say></Gather>
  <Say>Nothing pressed.</Say>
  <Redirect>/hooks/twilio/second/au_6</Redirect>
</Response>"##;

const SECOND: &str = r##"<Response>
  <Gather action="gather-empty" numDigits="1" finishOnKey="" actionOnEmptyResult="true"><Say>Press one.</Say></Gather>
</Response>"##;

const AFTER_EMPTY: &str = r##"<Response><Say>Silence heard.</Say></Response>"##;

#[tokio::test]
async fn a_gather_that_gets_only_the_finish_key_or_silence_falls_through_unless_asked_to_post() {
    let stand_in = TwilioStandIn::start(SID, TOKEN).await;
    let site = Site::start(
        TOKEN,
        &[
            ("/hooks/twilio/voice/au_6", FIRST),
            ("/hooks/twilio/second/au_6", SECOND),
            ("/hooks/twilio/second/gather-empty", AFTER_EMPTY),
        ],
    )
    .await;
    // "#" alone at a gather finishing on "#" is no input for Twilio: the call goes on with
    // the next verb. Then silence at a gather with actionOnEmptyResult posts empty Digits.
    stand_in.on_call(
        "+33612345678",
        CallScenario::Answer {
            keys: vec!["#".into(), "".into()],
        },
    );
    let twilio = channel(&config(&stand_in, site.base()));
    let id = twilio
        .call(&phone_call("au_6", "+33612345678", None))
        .await
        .unwrap();
    let transcript = stand_in.wait_call_done(id.as_str(), WAIT).await;

    assert_eq!(
        transcript.said_text(),
        "Press pound. Nothing pressed. Press one. Silence heard."
    );
    assert_eq!(transcript.gathered(), [(String::new(), String::new())]);
    assert!(transcript.events.contains(&CallEvent::GatherFellThrough));
    assert!(site.received_at("/hooks/twilio/gather/").is_empty());
    let empty = &site.received_at("/hooks/twilio/second/gather-empty")[0];
    assert_eq!(empty.get("Digits"), Some(""));
    assert!(empty.signature_valid);
}

#[tokio::test]
async fn a_busy_or_unanswered_call_posts_only_its_status() {
    let stand_in = TwilioStandIn::start(SID, TOKEN).await;
    let site = Site::start(TOKEN, &[]).await;
    stand_in.on_call("+33600000001", CallScenario::Busy);
    stand_in.on_call("+33600000002", CallScenario::NoAnswer);
    stand_in.on_call("+33600000003", CallScenario::Failed);
    let twilio = channel(&config(&stand_in, site.base()));

    let mut statuses = Vec::new();
    for (n, to) in ["+33600000001", "+33600000002", "+33600000003"]
        .iter()
        .enumerate()
    {
        let id = twilio
            .call(&phone_call(&format!("au_{n}"), to, None))
            .await
            .unwrap();
        let transcript = stand_in.wait_call_done(id.as_str(), WAIT).await;
        assert!(
            !transcript
                .events
                .iter()
                .any(|e| matches!(e, CallEvent::Fetched { .. })),
            "{transcript:?}"
        );
        statuses.push(transcript.call_statuses());
    }
    assert_eq!(
        statuses,
        [
            vec!["initiated", "busy"],
            vec!["initiated", "ringing", "no-answer"],
            vec!["failed"],
        ]
    );
    let received = site.received_at("/hooks/twilio/call-status/au_0");
    assert!(received.iter().all(|r| r.signature_valid));
    assert_eq!(received.last().unwrap().get("CallStatus"), Some("busy"));
}

#[tokio::test]
async fn text_status_callbacks_and_inbound_texts_are_signed_as_twilio_signs() {
    let stand_in = TwilioStandIn::start(SID, TOKEN).await;
    let site = Site::start(TOKEN, &[]).await;
    stand_in.on_text("+33612345679", TextScenario::Undelivered);
    let twilio = channel(&config(&stand_in, site.base()));

    let delivered = twilio
        .send_text(&text(Some("au_1"), "+33612345678"))
        .await
        .unwrap();
    let undelivered = twilio
        .send_text(&text(Some("au_2"), "+33612345679"))
        .await
        .unwrap();
    let sent = stand_in.wait_for_text_to("+33612345678", WAIT).await;
    assert_eq!(sent.sid.as_deref(), Some(delivered.as_str()));
    let posted = stand_in.wait_message_done(delivered.as_str(), WAIT).await;
    let statuses: Vec<&str> = posted.iter().map(|p| p.message_status.as_str()).collect();
    assert_eq!(statuses, ["sent", "delivered"]);
    assert!(posted.iter().all(|p| p.status == 200));
    let posted = stand_in.wait_message_done(undelivered.as_str(), WAIT).await;
    let last = posted.last().unwrap();
    assert_eq!(last.message_status, "undelivered");
    assert_eq!(last.error_code.as_deref(), Some("30003"));
    let received = site.received_at("/hooks/twilio/message-status/au_2");
    assert_eq!(received.len(), 2);
    assert!(received.iter().all(|r| r.signature_valid));
    assert_eq!(received[1].get("ErrorCode"), Some("30003"));
    assert_eq!(received[1].get("MessageSid"), Some(undelivered.as_str()));

    let (status, _) = stand_in
        .send_inbound_text(
            &site.url("/hooks/twilio/sms"),
            "+33612345678",
            FROM,
            "123456",
        )
        .await;
    assert_eq!(status, 200);
    let inbound = &site.received_at("/hooks/twilio/sms")[0];
    assert!(inbound.signature_valid);
    for (name, value) in [
        ("From", "+33612345678"),
        ("To", FROM),
        ("Body", "123456"),
        ("AccountSid", SID),
        ("NumMedia", "0"),
        ("NumSegments", "1"),
    ] {
        assert_eq!(inbound.get(name), Some(value), "{name}");
    }
    assert_eq!(inbound.get("MessageSid"), inbound.get("SmsSid"));
    // A replayed inbound text carries the same signature: only the server's own memory of
    // what it handled can refuse it; a changed body cannot be signed without the token.
    let params = stand_in.inbound_text_params("+33612345678", FROM, "123456");
    let signature = stand_in.sign(&site.url("/hooks/twilio/sms"), &params);
    let changed: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| {
            if k == "Body" {
                (k.clone(), "654321".into())
            } else {
                (k.clone(), v.clone())
            }
        })
        .collect();
    let (status, _) = stand_in
        .post_with_signature(&site.url("/hooks/twilio/sms"), &changed, Some(&signature))
        .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn webhooks_behind_a_load_balancer_are_signed_over_the_public_address_whichever_node_gets_them()
 {
    let stand_in = TwilioStandIn::start(SID, TOKEN).await;
    let public = "https://mfa.example.test";
    let documents = [
        ("/hooks/twilio/voice/au_5", VOICE),
        ("/hooks/twilio/gather/au_5", GATHERED),
    ];
    let node_a = Site::start_behind(TOKEN, Some(public), &documents).await;
    let node_b = Site::start_behind(TOKEN, Some(public), &documents).await;
    stand_in.route(
        public,
        &[node_a.base().to_owned(), node_b.base().to_owned()],
    );
    stand_in.on_call(
        "+33612345678",
        CallScenario::Answer {
            keys: vec!["1234#".into()],
        },
    );
    let twilio = channel(&config(&stand_in, public));

    let id = twilio
        .call(&phone_call("au_5", "+33612345678", None))
        .await
        .unwrap();
    let transcript = stand_in.wait_call_done(id.as_str(), WAIT).await;

    assert_eq!(transcript.gathered(), [("1234".to_owned(), "#".to_owned())]);
    assert!(transcript.hung_up());
    assert!(
        transcript.webhook_statuses().iter().all(|s| *s == 200),
        "{transcript:?}"
    );
    let (a, b) = (node_a.received(), node_b.received());
    assert_eq!(a.len() + b.len(), 6);
    assert!(!a.is_empty() && !b.is_empty(), "{a:?} {b:?}");
    assert!(a.iter().chain(&b).all(|r| r.signature_valid));
    let webhooks = stand_in.webhooks();
    assert!(
        webhooks.iter().all(|w| w.url.starts_with(public)),
        "{webhooks:?}"
    );
    assert!(
        webhooks
            .iter()
            .all(|w| w.sent_to.starts_with(node_a.base()) || w.sent_to.starts_with(node_b.base())),
        "{webhooks:?}"
    );

    // A node that checks the signature over its own address instead of the public one
    // refuses Twilio's webhooks.
    let inner_only = Site::start(TOKEN, &documents).await;
    stand_in.route(public, &[inner_only.base().to_owned()]);
    let (status, _) = stand_in
        .send_inbound_text(
            &format!("{public}/hooks/twilio/sms"),
            "+33612345678",
            FROM,
            "123456",
        )
        .await;
    assert_eq!(status, 403);
}
