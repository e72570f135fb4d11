import asyncio, subprocess, sys
from tests.e2e.conftest import start_live_server
async def test_dbg(base_settings, migrated_database_url):
    s = await start_live_server(base_settings)
    a = s.address
    out = subprocess.run(f"""grpcurl -plaintext -d '{{"username": "bob.x", "email": "bobx@example.org", "password": "analytical-engine-1843"}}' {a} pixelcheck.v1.AuthService/SignUp; grpcurl -plaintext -d '{{"login": "bob.x", "password": "analytical-engine-1843"}}' {a} pixelcheck.v1.AuthService/SignIn""", shell=True, capture_output=True, text=True, env={"PATH": "/work/main/.venv/bin:/usr/bin:/bin"})
    print(out.stdout, out.stderr)
    await s.stop()
