import { expect } from 'chai';
import {
  ConfigError,
  loadConfig,
  maxPublisherTimeout,
  parseRedisUrl,
  redactUrl,
  SETTINGS,
  trustedProxies,
  type Config,
  type Env,
  type Role,
} from '../src/index.js';

function problemsOf(env: Env, role: Role = 'producer'): string[] {
  try {
    loadConfig(env, role);
  } catch (err) {
    expect(err).to.be.instanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  expect.fail('expected a ConfigError');
}

describe('loadConfig', () => {
  describe('with an empty environment', () => {
    it('gives the producer every default, listening on 4000', () => {
      const config = loadConfig({}, 'producer');
      expect(config).to.include({
        role: 'producer',
        redisUrl: 'redis://127.0.0.1:6379',
        redisPrefix: 'po:',
        host: '0.0.0.0',
        port: 4000,
        logLevel: 'info',
        claimTimeoutSeconds: 60,
        retentionSeconds: 7 * 24 * 3600,
        retryMaxAgeSeconds: 3 * 24 * 3600,
        maxBulkMessages: 3000,
        redisMinReplicas: 0,
        nodeId: '',
      });
    });

    it('gives the consumer every default, listening on 4001, with a generated node id', () => {
      const config = loadConfig({}, 'consumer');
      expect(config).to.include({ role: 'consumer', port: 4001, heartbeatSeconds: 5, breakerThreshold: 10 });
      expect(config.nodeId).to.be.a('string').and.not.equal('');
      expect(loadConfig({}, 'consumer').nodeId).not.to.equal(config.nodeId);
    });

    it('has a value for every setting, equal to its documented default', () => {
      for (const role of ['producer', 'consumer'] as const) {
        const config = loadConfig({}, role) as unknown as Record<string, unknown>;
        for (const [field, setting] of Object.entries(SETTINGS)) {
          if (field === 'nodeId') continue;
          const d = setting.default as string | number | ((r: Role) => string | number);
          // A list's documented default is the empty string: no entries.
          if (setting.kind === 'tokens') expect(config[field], `${role} ${setting.env}`).to.deep.equal([]);
          else expect(config[field], `${role} ${setting.env}`).to.equal(typeof d === 'function' ? d(role) : d);
        }
      }
    });
  });

  it('reads every variable it documents, trimming blanks around values', () => {
    const config = loadConfig(
      {
        REDIS_URL: ' rediss://:pw@redis.internal:6380/2 ',
        REDIS_PREFIX: 'app:',
        HOST: '127.0.0.1',
        PORT: '8080',
        LOG_LEVEL: 'debug',
        CLAIM_TIMEOUT_SECONDS: '30',
        RETENTION_SECONDS: '7200',
        RETRY_MAX_AGE_SECONDS: '3600',
        NODE_ID: 'node-7',
        HEARTBEAT_SECONDS: '2',
      },
      'consumer',
    );
    expect(config).to.include({
      redisUrl: 'rediss://:pw@redis.internal:6380/2',
      redisPrefix: 'app:',
      host: '127.0.0.1',
      port: 8080,
      logLevel: 'debug',
      claimTimeoutSeconds: 30,
      retentionSeconds: 7200,
      retryMaxAgeSeconds: 3600,
      nodeId: 'node-7',
      heartbeatSeconds: 2,
    });
    expect(maxPublisherTimeout(config)).to.equal(29);
  });

  it('treats an empty variable as unset', () => {
    expect(loadConfig({ PORT: '', LOG_LEVEL: '' }, 'producer')).to.include({ port: 4000, logLevel: 'info' });
  });

  it('reports every bad variable in one error, each naming the variable, its value and what was expected', () => {
    const problems = problemsOf({
      REDIS_URL: 'http://localhost:6379',
      PORT: 'eighty',
      LOG_LEVEL: 'loud',
      CLAIM_TIMEOUT_SECONDS: '1',
      HEARTBEAT_SECONDS: '1.5',
      MAX_BULK_MESSAGES: '-3',
    });
    expect(problems).to.have.length(6);
    const about = (name: string): string => problems.find((p) => p.startsWith(`${name}=`)) ?? '';
    expect(about('REDIS_URL')).to.contain('"http://localhost:6379"').and.contain('redis://');
    expect(about('PORT')).to.contain('"eighty"').and.contain('whole number');
    expect(about('LOG_LEVEL')).to.contain('"loud"').and.contain('info');
    expect(about('CLAIM_TIMEOUT_SECONDS')).to.contain('>= 2');
    expect(about('HEARTBEAT_SECONDS')).to.contain('"1.5"');
    expect(about('MAX_BULK_MESSAGES')).to.contain('"-3"');
  });

  it('names every problem in the error message, one line for the log', () => {
    let message = '';
    try {
      loadConfig({ PORT: 'x', LOG_LEVEL: 'y' }, 'consumer');
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).to.contain('PORT').and.contain('LOG_LEVEL').and.not.contain('\n');
  });

  it('refuses a URL that is not a URL', () => {
    expect(problemsOf({ REDIS_URL: 'not a url' })).to.have.length(1);
  });

  it('refuses RETENTION_SECONDS below RETRY_MAX_AGE_SECONDS, naming both', () => {
    const problems = problemsOf({ RETENTION_SECONDS: '3600', RETRY_MAX_AGE_SECONDS: '7200' }, 'consumer');
    expect(problems).to.have.length(1);
    expect(problems[0])
      .to.match(/^RETENTION_SECONDS=3600/)
      .and.contain('RETRY_MAX_AGE_SECONDS');
    expect(problemsOf({ RETRY_MAX_AGE_SECONDS: String(8 * 24 * 3600) })[0]).to.match(/^RETENTION_SECONDS=/);
  });

  it('accepts RETENTION_SECONDS equal to RETRY_MAX_AGE_SECONDS', () => {
    expect(
      loadConfig({ RETENTION_SECONDS: '3600', RETRY_MAX_AGE_SECONDS: '3600' }, 'producer').retentionSeconds,
    ).to.equal(3600);
  });

  it('returns a frozen object', () => {
    const config = loadConfig({}, 'producer');
    expect(Object.isFrozen(config)).to.equal(true);
    expect(() => {
      (config as { port: number }).port = 1;
    }).to.throw(TypeError);
    expect(config.port).to.equal(4000);
  });

  it('never reads process.env', () => {
    const saved = process.env.PORT;
    process.env.PORT = '1234';
    try {
      const config: Config = loadConfig({}, 'producer');
      expect(config.port).to.equal(4000);
    } finally {
      if (saved === undefined) delete process.env.PORT;
      else process.env.PORT = saved;
    }
  });

  it('documents every setting with its variable, the processes that read it and a description', () => {
    const envs = new Set<string>();
    for (const setting of Object.values(SETTINGS)) {
      expect(setting.env).to.match(/^[A-Z][A-Z0-9_]*$/);
      expect(envs.has(setting.env), setting.env).to.equal(false);
      envs.add(setting.env);
      expect(setting.roles.length, setting.env).to.be.greaterThan(0);
      expect(setting.doc.length, setting.env).to.be.greaterThan(10);
    }
  });
});

describe('loadConfig, more checks', () => {
  it('reports the retention check beside other problems', () => {
    try {
      loadConfig({ PORT: 'x', RETENTION_SECONDS: '10', RETRY_MAX_AGE_SECONDS: '20' }, 'consumer');
      expect.fail('should throw');
    } catch (err) {
      expect(err).to.be.instanceOf(ConfigError);
      const problems = (err as ConfigError).problems;
      expect(problems.some((p) => p.startsWith('PORT='))).to.equal(true);
      expect(problems.some((p) => p.startsWith('RETENTION_SECONDS=10'))).to.equal(true);
    }
  });

  it('reads a boolean as true, false, 1, 0, yes or no, and refuses anything else', () => {
    expect(loadConfig({ AUDIT_STREAM: 'TRUE' }, 'consumer').auditStream).to.equal(true);
    expect(loadConfig({ AUDIT_STREAM: '0' }, 'consumer').auditStream).to.equal(false);
    expect(loadConfig({}, 'consumer').auditStream).to.equal(false);
    expect(problemsOf({ AUDIT_STREAM: 'maybe' }, 'consumer')).to.deep.equal([
      'AUDIT_STREAM="maybe": expected true or false',
    ]);
  });

  it('reads RETENTION when RETENTION_SECONDS is unset, naming it in problems', () => {
    expect(loadConfig({ RETENTION: '864000' }, 'consumer').retentionSeconds).to.equal(864000);
    expect(loadConfig({ RETENTION: '864000', RETENTION_SECONDS: '700000' }, 'consumer').retentionSeconds).to.equal(
      700000,
    );
    expect(problemsOf({ RETENTION: '7d' })).to.deep.equal(['RETENTION="7d": expected a whole number >= 1']);
  });

  it('refuses a key prefix that would break hash tags', () => {
    expect(() => loadConfig({ REDIS_PREFIX: 'po{x}:' }, 'producer')).to.throw(/REDIS_PREFIX/);
  });
});

describe('API_TOKENS', () => {
  const A = 'token-a-0123456789abcdef';
  const B = 'token-b-0123456789abcdef';

  it('is off (no tokens) when unset or empty, and read by the producer only', () => {
    expect(loadConfig({}, 'producer').apiTokens).to.deep.equal([]);
    expect(loadConfig({ API_TOKENS: '' }, 'producer').apiTokens).to.deep.equal([]);
    expect(SETTINGS.apiTokens.roles).to.deep.equal(['producer']);
  });

  it('reads one or more comma-separated tokens, trimming blanks around each', () => {
    expect(loadConfig({ API_TOKENS: A }, 'producer').apiTokens).to.deep.equal([A]);
    expect(loadConfig({ API_TOKENS: ` ${A} ,\t${B} ` }, 'producer').apiTokens).to.deep.equal([A, B]);
    expect(Object.isFrozen(loadConfig({ API_TOKENS: A }, 'producer').apiTokens)).to.equal(true);
  });

  it('refuses empty entries, short tokens and characters a header cannot carry, never echoing a token', () => {
    const short = 'short-secret';
    const cases: [string, RegExp][] = [
      [`${A},`, /token 2 of 2 is empty/],
      [`${A}, ,${B}`, /token 2 of 3 is empty/],
      [short, /the token is 12 characters long \(expected at least 16\)/],
      [`${A},${short}`, /token 2 of 2 is 12 characters long/],
      [`${A} ${B}`, /printable ASCII/],
      [`${A}é`, /printable ASCII/],
    ];
    for (const [value, expected] of cases) {
      const problems = problemsOf({ API_TOKENS: value });
      expect(problems, value).to.have.length(1);
      expect(problems[0], value)
        .to.match(/^API_TOKENS: /)
        .and.match(expected);
      for (const secret of [A, B, short]) expect(problems[0], value).to.not.contain(secret);
    }
    expect(problemsOf({ API_TOKENS: ',' })).to.deep.equal([
      'API_TOKENS: token 1 of 2 is empty (expected comma-separated tokens, no empty entries)',
      'API_TOKENS: token 2 of 2 is empty (expected comma-separated tokens, no empty entries)',
    ]);
  });

  it('reports a bad token beside other problems, in one error whose message has no token either', () => {
    let message = '';
    try {
      loadConfig({ API_TOKENS: 'tiny-token', PORT: 'x' }, 'producer');
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).to.contain('API_TOKENS').and.contain('PORT').and.not.contain('tiny-token');
  });
});

describe('a Redis Cluster in the configuration', () => {
  it('accepts redis+cluster:// and rediss+cluster:// URLs with one or more nodes', () => {
    for (const url of [
      'redis+cluster://10.0.0.1:7000',
      'redis+cluster://10.0.0.1:7000,10.0.0.2:7001,redis-2.internal:7002',
      'rediss+cluster://default:s3cret@redis.internal:6380,redis2.internal:6380',
      'redis+cluster://[::1]:7000,localhost',
    ]) {
      expect(loadConfig({ REDIS_URL: url }, 'consumer').redisUrl, url).to.equal(url);
    }
  });

  it('parses the nodes, credentials and TLS of a cluster URL', () => {
    expect(parseRedisUrl('rediss+cluster://me:p%40ss@a.internal:7000,[::1]:7001,b')).to.deep.equal({
      kind: 'cluster',
      nodes: [
        { host: 'a.internal', port: 7000 },
        { host: '::1', port: 7001 },
        { host: 'b', port: 6379 },
      ],
      username: 'me',
      password: 'p@ss',
      tls: true,
    });
    expect(parseRedisUrl('redis://127.0.0.1:6379/2')).to.deep.equal({
      kind: 'single',
      url: 'redis://127.0.0.1:6379/2',
    });
  });

  it('refuses a cluster URL with a database path, a bad port or no node, naming REDIS_URL', () => {
    for (const url of [
      'redis+cluster://a:7000/2',
      'redis+cluster://a:70000',
      'redis+cluster://',
      'redis+cluster://a:x',
    ]) {
      const problems = problemsOf({ REDIS_URL: url });
      expect(problems, url).to.have.length(1);
      expect(problems[0], url).to.match(/^REDIS_URL=/);
    }
  });

  it('folds REDIS_CLUSTER_NODES into a cluster URL with the scheme and credentials of REDIS_URL', () => {
    expect(loadConfig({ REDIS_CLUSTER_NODES: ' 10.0.0.1:7000, 10.0.0.2:7000 ' }, 'producer').redisUrl).to.equal(
      'redis+cluster://10.0.0.1:7000,10.0.0.2:7000',
    );
    expect(
      loadConfig({ REDIS_URL: 'rediss://:pw@ignored:6379', REDIS_CLUSTER_NODES: 'a:7000,b:7000' }, 'producer').redisUrl,
    ).to.equal('rediss+cluster://:pw@a:7000,b:7000');
    const problems = problemsOf({ REDIS_CLUSTER_NODES: 'a:7000,:' });
    expect(problems).to.have.length(1);
    expect(problems[0]).to.match(/^REDIS_CLUSTER_NODES="a:7000,:"/);
  });

  it('never logs a cluster password', () => {
    expect(redactUrl('redis+cluster://me:s3cret@a:7000,b:7000')).to.equal('redis+cluster://me:***@a:7000,b:7000');
    expect(redactUrl('rediss://:s3cret@a:6380')).to.not.contain('s3cret');
  });
});

describe('Redis Sentinel in the configuration', () => {
  it('folds REDIS_SENTINELS and REDIS_SENTINEL_NAME into a sentinel URL with the scheme, credentials and db of REDIS_URL', () => {
    expect(loadConfig({ REDIS_SENTINELS: ' 10.0.0.1:26379, 10.0.0.2:26379 ' }, 'producer').redisUrl).to.equal(
      'redis+sentinel://10.0.0.1:26379,10.0.0.2:26379/mymaster',
    );
    const url = loadConfig(
      {
        REDIS_URL: 'rediss://app:p%40ss@ignored:6379/3',
        REDIS_SENTINELS: 's1:26379,s2',
        REDIS_SENTINEL_NAME: 'orders-redis',
        REDIS_SENTINEL_PASSWORD: 'sen&tinel',
      },
      'consumer',
    ).redisUrl;
    expect(url).to.equal('rediss+sentinel://app:p%40ss@s1:26379,s2/orders-redis/3?sentinelPassword=sen%26tinel');
    expect(parseRedisUrl(url)).to.deep.equal({
      kind: 'sentinel',
      sentinels: [
        { host: 's1', port: 26379 },
        { host: 's2', port: 26379 },
      ],
      name: 'orders-redis',
      db: 3,
      username: 'app',
      password: 'p@ss',
      sentinelPassword: 'sen&tinel',
      tls: true,
    });
  });

  it('accepts a sentinel URL in REDIS_URL itself', () => {
    const url = 'redis+sentinel://:pw@127.0.0.1:26379,127.0.0.1:26380/mymaster';
    expect(loadConfig({ REDIS_URL: url }, 'producer').redisUrl).to.equal(url);
    expect(parseRedisUrl(url)).to.deep.include({
      kind: 'sentinel',
      name: 'mymaster',
      db: 0,
      password: 'pw',
      tls: false,
    });
  });

  it('refuses a malformed value at start, naming the variable', () => {
    expect(problemsOf({ REDIS_SENTINELS: 'a:26379,b:99999' })).to.deep.equal([
      'REDIS_SENTINELS="a:26379,b:99999": expected host:port for each sentinel, got "b:99999"',
    ]);
    expect(problemsOf({ REDIS_SENTINELS: ',' })[0]).to.match(/^REDIS_SENTINELS=",": expected one or more sentinel/);
    expect(problemsOf({ REDIS_SENTINELS: 'a:26379', REDIS_SENTINEL_NAME: 'my master/1' })).to.deep.equal([
      'REDIS_SENTINEL_NAME="my master/1": expected the master set\'s name (letters, digits, . _ : -)',
    ]);
    expect(problemsOf({ REDIS_SENTINELS: 'a:26379', REDIS_CLUSTER_NODES: 'b:7000' })[0]).to.match(
      /^REDIS_SENTINELS="a:26379": expected REDIS_CLUSTER_NODES or REDIS_SENTINELS, not both/,
    );
    expect(problemsOf({ REDIS_SENTINELS: 'a:26379', REDIS_URL: 'redis+cluster://b:7000' })[0]).to.match(
      /^REDIS_URL="redis\+cluster:\/\/b:7000": with REDIS_SENTINELS, expected a redis:\/\/ or rediss:\/\/ URL/,
    );
    for (const url of ['redis+sentinel://a:26379', 'redis+sentinel://a:26379/bad name', 'redis+sentinel:///mymaster']) {
      const problems = problemsOf({ REDIS_URL: url });
      expect(problems, url).to.have.length(1);
      expect(problems[0], url).to.match(/^REDIS_URL=/);
    }
  });

  it('never logs a data node’s or a sentinel’s password', () => {
    const url = 'redis+sentinel://me:s3cret@a:26379,b:26379/mymaster/2?sentinelPassword=t0p';
    expect(redactUrl(url)).to.equal('redis+sentinel://me:***@a:26379,b:26379/mymaster/2?sentinelPassword=***');
  });
});

describe('the producer’s connection limits and proxies in the configuration', () => {
  it('refuses HEADERS_TIMEOUT_MS above REQUEST_TIMEOUT_MS, naming both', () => {
    const problems = problemsOf({ REQUEST_TIMEOUT_MS: '5000', HEADERS_TIMEOUT_MS: '6000' });
    expect(problems).to.deep.equal([
      'HEADERS_TIMEOUT_MS=6000: expected at most REQUEST_TIMEOUT_MS (5000), which covers the headers too',
    ]);
    expect(loadConfig({ REQUEST_TIMEOUT_MS: '5000', HEADERS_TIMEOUT_MS: '5000' }, 'producer')).to.include({
      requestTimeoutMs: 5000,
      headersTimeoutMs: 5000,
    });
    // The default HEADERS_TIMEOUT_MS (10 s) is above a REQUEST_TIMEOUT_MS of 1 s: say so.
    expect(problemsOf({ REQUEST_TIMEOUT_MS: '1000' })[0]).to.match(/^HEADERS_TIMEOUT_MS=10000: /);
  });

  it('takes TRUST_PROXY as addresses, CIDR ranges and range names, and refuses anything else naming the entries', () => {
    const config = loadConfig({ TRUST_PROXY: '10.0.0.0/8, 127.0.0.1,fd00::/8,loopback' }, 'producer');
    expect(trustedProxies(config)).to.deep.equal(['10.0.0.0/8', '127.0.0.1', 'fd00::/8', 'loopback']);
    expect(trustedProxies(loadConfig({}, 'producer'))).to.deep.equal([]);
    const problems = problemsOf({ TRUST_PROXY: '10.0.0.0/33,ingress,1.2.3.4/8/8,::1/129,10.0.0.0/' });
    expect(problems).to.have.length(1);
    expect(problems[0]).to.equal(
      'TRUST_PROXY="10.0.0.0/33,ingress,1.2.3.4/8/8,::1/129,10.0.0.0/": expected comma-separated IP addresses, CIDR ranges or loopback, linklocal, uniquelocal (not "10.0.0.0/33", "ingress", "1.2.3.4/8/8", "::1/129", "10.0.0.0/")',
    );
  });
});
