async def test_publish_reserve_ack(omniq, raw):
    jid = await omniq.publish("q", {"a": 1})
    job = await omniq.reserve("q")
    assert job is not None
    assert job.job_id == jid
    await omniq.ack_success("q", jid, job.lease_token)
    assert raw.hget("{q}:job:" + jid, "state") == "completed"
