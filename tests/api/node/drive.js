'use strict';
// Drives one of Baidu's official Node SDKs (npm `baidu-aip-sdk`), unchanged, against a renlian server.
//
//   node drive.js SDK_DIR BASE_URL APP_ID API_KEY SECRET_KEY < calls.json
//
// calls.json is a JSON list of {"method": "detect", "args": [...]}: AipFace methods and their
// arguments, called one after another on one client, as a user's program would. It prints one JSON
// object: {"version": the SDK's version, "results": what each call resolved to, "requests": every
// HTTP request the SDK made, token requests included}.
//
// The SDK's URLs are hard-coded to https://aip.baidubce.com. It offers a hook for exactly this kind of
// change, HttpClient.setRequestInterceptor, which sees (and may replace) the options of every request
// it makes before they reach the `request` library; the driver uses it to swap the scheme and host for
// BASE_URL and touches nothing else. The Host header is left as the SDK wrote it (aip.baidubce.com):
// in signed mode that header is signed, so changing it would break the signature a user's program sends.

const fs = require('fs');
const path = require('path');

const BAIDU = 'https://aip.baidubce.com';

async function main() {
    const [sdkDir, baseUrl, appId, apiKey, secretKey] = process.argv.slice(2);
    const calls = JSON.parse(fs.readFileSync(0, 'utf8'));
    const sdk = require(path.resolve(sdkDir));
    const version = JSON.parse(fs.readFileSync(path.join(sdkDir, 'package.json'), 'utf8')).version;

    const requests = [];
    // Set before the client exists: its constructor asks for a token at once.
    sdk.HttpClient.setRequestInterceptor(function (options) {
        if (!options.url.startsWith(BAIDU)) {
            throw new Error('unexpected URL ' + options.url);
        }
        const headers = options.headers || {};
        requests.push({
            method: options.method.toUpperCase(),
            target: options.url.slice(BAIDU.length),
            authorization: headers.authorization || null,
            host: headers.Host || null,
        });
        options.url = baseUrl + options.url.slice(BAIDU.length);
        // The SDK's own 10 s limit is meant for Baidu's cluster; a test machine busy with other
        // tests can take longer over a first inference.
        options.timeout = 60000;
        return options;
    });

    const client = new sdk.face(appId, apiKey, secretKey);
    const results = [];
    for (const call of calls) {
        if (typeof client[call.method] !== 'function') {
            throw new Error('this SDK has no method ' + call.method);
        }
        try {
            results.push(await client[call.method](...call.args));
        } catch (error) {
            // A rejected promise: a network error, or a token response the SDK could not read.
            results.push({sdk_error: String(error && error.error ? JSON.stringify(error.error) : error)});
        }
    }
    process.stdout.write(JSON.stringify({version: version, results: results, requests: requests}) + '\n');
}

main().catch(function (error) {
    process.stderr.write(String(error && error.stack ? error.stack : error) + '\n');
    process.exit(1);
});
