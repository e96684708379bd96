"""Words the generator builds finews posts from: media, names, companies, sentences.

Media slugs are what the publishing job made of the media name with
``xpinyin`` (syllables run together, non-Chinese characters kept, spaces
and brackets kept), so some hold upper case, digits, spaces and brackets, as
the real ``21shijijingjibaodao 21caijingAPP`` and
``anxinguojizhengquan(xianggang)`` do.

Names: a surname (single or compound) plus one or two given-name
characters. No given-name character is itself a surname in
:data:`SURNAMES`, so names written together (本报通讯员赵峰顿星亮) split
unambiguously at each surname.
"""

from __future__ import annotations

#: (media name, category slug). The tag is the name + 新闻.
MEDIA: tuple[tuple[str, str], ...] = (
    ("大众日报", "dazhongribao"),
    ("上海证券报", "shanghaizhengquanbao"),
    ("中国证券报", "zhongguozhengquanbao"),
    ("证券时报", "zhengquanshibao"),
    ("证券日报", "zhengquanribao"),
    ("经济参考报", "jingjicankaobao"),
    ("经济日报", "jingjiribao"),
    ("人民日报", "renminribao"),
    ("新华社", "xinhuashe"),
    ("央视新闻", "yangshixinwen"),
    ("第一财经", "diyicaijing"),
    ("21世纪经济报道", "21shijijingjibaodao"),
    ("21世纪经济报道 21财经APP", "21shijijingjibaodao 21caijingAPP"),
    ("21世纪经济报道  南财理财通", "21shijijingjibaodao  nancailicaitong"),
    ("36氪", "36ke"),
    ("财联社", "cailianshe"),
    ("界面新闻", "jiemianxinwen"),
    ("每日经济新闻", "meirijingjixinwen"),
    ("中国经营报", "zhongguojingyingbao"),
    ("北京商报", "beijingshangbao"),
    ("新京报", "xinjingbao"),
    ("南方都市报", "nanfangdushibao"),
    ("羊城晚报", "yangchengwanbao"),
    ("安徽日报", "anhuiribao"),
    ("河南日报", "henanribao"),
    ("四川日报", "sichuanribao"),
    ("浙江日报", "zhejiangribao"),
    ("齐鲁晚报", "qiluwanbao"),
    ("长江日报", "changjiangribao"),
    ("中国基金报", "zhongguojijinbao"),
    ("期货日报", "qihuoribao"),
    ("金融时报", "jinrongshibao"),
    ("中国银行保险报", "zhongguoyinhangbaoxianbao"),
    ("中国汽车报", "zhongguoqichebao"),
    ("科创板日报", "kechuangbanribao"),
    ("IT之家", "ITzhijia"),
    ("TechWeb", "TechWeb"),
    ("Wind", "Wind"),
    ("DoNews", "DoNews"),
    ("MedTrend医趋势", "MedTrendyiqushi"),
    ("99期货", "99qihuo"),
    ("6G俱乐部", "6Gjulebu"),
    ("安信国际证券(香港)", "anxinguojizhengquan(xianggang)"),
    ("光大证券研究", "guangdazhengquanyanjiu"),
    ("中信建投证券", "zhongxinjiantouzhengquan"),
    ("智通财经", "zhitongcaijing"),
    ("格隆汇", "gelonghui"),
    ("中国新闻网", "zhongguoxinwenwang"),
    ("央广网", "yangguangwang"),
)

#: the orphan category: the same media under a misspelt slug (both occur on the real site)
ORPHAN_MEDIA = ("21世纪经济报道", "21shijiejingjibaodao")

#: media that syndicate a story to others
WIRE_MEDIA = ("新华社", "中国新闻网", "央广网")

#: names a source line can cut with markup: (name, word inside the markup, board code)
CUT_SOURCES: tuple[tuple[str, str, str], ...] = (
    ("上海证券报", "证券", "BK0473"),
    ("中国证券报", "证券", "BK0473"),
    ("证券时报", "证券", "BK0473"),
    ("证券日报", "证券", "BK0473"),
    ("中国银行保险报", "银行", "BK0475"),
    ("中国汽车报", "汽车", "BK1029"),
)

#: trailing media of rolling news, with the bracket style as written
ROLLING_SOURCES: tuple[tuple[str, str, str], ...] = (
    ("（", "央视新闻", "）"),
    ("(", "央视新闻", ")"),
    ("（", "央视新闻客户端", "）"),
    ("（", "新华社", "）"),
    ("（", "上海证券报", "）"),
    ("（", "证券时报", "）"),
    ("（", "第一财经", "）"),
)

SURNAMES_SINGLE = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程"
    "苏魏吕丁任沈姚卢姜崔钟谭陆汪范石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚"
    "邵万钱严覃武戴莫孔向汤顿"
)
SURNAMES_COMPOUND = ("欧阳", "司马", "上官", "诸葛", "东方", "慕容", "令狐", "皇甫", "公孙")
#: every surname the generator uses (single and compound)
SURNAMES: tuple[str, ...] = (*SURNAMES_SINGLE, *SURNAMES_COMPOUND)
GIVEN_CHARS = "".join(
    c
    for c in (
        "峰星亮泽环伟芳娜敏静丽强磊洋艳勇军杰娟涛超秀霞刚英玉兰萍鹏辉波斌浩凯健俊帆帅旭昊颖琳晨"
        "雪婷倩悦思嘉欣怡璐鑫博志建新丹蕾琦瑶佳慧楠哲睿轩彬晶莉薇菲岚翔毅诚铭锋坤晖聪蓉"
    )
    if c not in SURNAMES_SINGLE and not any(c in s for s in SURNAMES_COMPOUND)
)

CITIES = (
    "北京",
    "上海",
    "广州",
    "深圳",
    "杭州",
    "南京",
    "济南",
    "青岛",
    "成都",
    "武汉",
    "郑州",
    "合肥",
    "西安",
    "长沙",
    "福州",
    "天津",
)
REGIONS = (
    "枣庄市峄城区",
    "济南市历下区",
    "青岛市黄岛区",
    "杭州市余杭区",
    "苏州工业园区",
    "深圳市南山区",
    "成都高新区",
    "武汉东湖高新区",
    "合肥市包河区",
    "郑州航空港区",
    "广东省",
    "江苏省",
    "浙江省",
    "山东省",
    "安徽省",
    "四川省",
    "河南省",
    "福建省",
)
TOPICS = (
    "优化营商环境",
    "新能源汽车产业",
    "乡村振兴",
    "数字经济",
    "专精特新企业培育",
    "稳外贸稳外资",
    "促消费",
    "绿色金融",
    "碳达峰碳中和",
    "科技创新",
    "制造业转型升级",
    "普惠金融",
    "跨境电商",
    "现代物流",
    "文旅融合",
    "医疗保障",
)
INDUSTRIES = (
    "新能源",
    "半导体",
    "光伏",
    "锂电池",
    "白酒",
    "医药",
    "汽车零部件",
    "储能",
    "制冷剂",
    "有色金属",
    "煤炭",
    "券商",
    "保险",
    "房地产",
    "消费电子",
    "软件服务",
)
#: (name, market, code) for stock links: market 1 = Shanghai, 0 = Shenzhen, 116 = Hong Kong
COMPANIES: tuple[tuple[str, str, str], ...] = (
    ("巨化股份", "1", "600160"),
    ("联创股份", "0", "300343"),
    ("国新文化", "1", "600636"),
    ("宁德时代", "0", "300750"),
    ("比亚迪", "0", "002594"),
    ("贵州茅台", "1", "600519"),
    ("招商银行", "1", "600036"),
    ("中国平安", "1", "601318"),
    ("隆基绿能", "1", "601012"),
    ("格力电器", "0", "000651"),
    ("美的集团", "0", "000333"),
    ("海康威视", "0", "002415"),
    ("药明康德", "1", "603259"),
    ("三一重工", "1", "600031"),
    ("紫金矿业", "1", "601899"),
    ("中信证券", "1", "600030"),
    ("五粮液", "0", "000858"),
    ("万华化学", "1", "600309"),
    ("东方财富", "0", "300059"),
    ("长江电力", "1", "600900"),
)
#: (board name, board code) for board links
BOARDS: tuple[tuple[str, str], ...] = (
    ("新能源", "BK0493"),
    ("知识产权", "BK0839"),
    ("光伏", "BK0478"),
    ("锂电池", "BK0574"),
    ("白酒", "BK0896"),
    ("储能", "BK0989"),
)
ORGS = ("国家统计局", "海关总署", "中国人民银行", "国家能源局", "中国汽车工业协会", "商务部")
INDICATORS = (
    "社会消费品零售总额",
    "规模以上工业增加值",
    "进出口总值",
    "新能源汽车销量",
    "固定资产投资",
    "居民消费价格指数",
)
ROLES = ("区纪委监委负责人", "公司相关负责人", "业内人士", "一位基金经理", "当地企业负责人", "专家")
QUOTES = (
    "下一步，我们将继续加大支持力度，推动相关政策尽快落地见效",
    "目前订单已经排到了下半年，产能利用率保持在较高水平",
    "市场短期波动难免，但中长期向好的基本面没有改变",
    "我们希望通过数字化手段，让企业少跑腿、数据多跑路",
    "今年的增长主要来自海外市场和新产品的放量",
    "行业集中度还会进一步提升，龙头企业优势明显",
)
EVENTS = (
    "拟投资建设年产5万吨新材料项目",
    "与多家车企签署长期供货协议",
    "一季度净利润同比增长超三成",
    "拟回购不超过2亿元公司股份",
    "控股子公司获得高新技术企业认定",
    "新建生产线已进入试生产阶段",
    "拟在海外设立全资子公司",
    "中标多个储能电站项目",
)
IMAGE_SOURCES = ("公司官网", "受访者供图", "视觉中国", "新华社", "资料图", "东方IC")

#: sentence templates; ``{…}`` slots are filled by the generator
SENTENCES = (
    "今年以来，{region}聚焦{topic}，累计推动落地项目{n}个，同比增长{pct}%。",
    "据{org}数据显示，{month}月份{indicator}同比增长{pct}%，增速比上月加快{small}个百分点。",
    "业内人士表示，{industry}行业正处于快速发展阶段，未来市场空间较大。",
    "截至目前，{region}已走访企业{n}家，协调解决各类问题{n2}个。",
    "{company}相关负责人介绍，公司{event}，预计将进一步增强核心竞争力。",
    "分析人士认为，随着政策持续发力，{industry}板块有望迎来估值修复。",
    "从细分领域来看，{industry}、{industry2}等方向表现较为活跃。",
    "{region}相关部门将进一步完善配套政策，推动{topic}取得更大成效。",
    "数据显示，前{month}个月全市新增市场主体{n}户，其中企业{n2}户。",
    "{date}，{company}发布公告称，公司{event}。",
    "记者从{region}获悉，当地围绕{topic}出台了{small}项具体措施。",
    "据了解，该项目总投资约{n}亿元，建成后预计年产值可达{n2}亿元。",
    "“{quote}。”{role}说。",
    "{role}表示，{industry}产业链上下游协同效应正在显现。",
    "与此同时，{region}持续加强监管执法，共办理相关案件{n}件。",
    "此前，公司曾在投资者互动平台表示，{industry}业务收入占比逐年提升。",
    "市场人士指出，短期内{industry}板块或仍将维持震荡格局。",
    "为帮助企业纾困解难，{region}组织金融机构开展银企对接活动{small}场，授信金额{n}亿元。",
    "在{topic}方面，{region}通过建立专班机制，实行“一企一策”精准服务。",
    "据统计，{month}月份全国{indicator}达到{n}亿元，同比增长{pct}%。",
    "多家机构认为，下半年经济有望延续恢复态势，{industry}需求将逐步回暖。",
    "{company}表示，将根据行业发展趋势，继续加大新产品研发投入。",
    "受国内外环境影响，部分企业在生产经营中仍面临成本上涨等压力。",
    "下一步，{region}将坚持问题导向，持续跟踪督办，确保各项措施落到实处。",
    "截至{month}月末，{region}普惠小微贷款余额{n}亿元，较年初增加{n2}亿元。",
    "同日，{company}股价收涨{small}.{small2}%，成交额{n}亿元。",
)
#: cross-head templates (short lines inside the body)
CROSS_HEADS = (
    "深入一线，倾听企声找“痛点”",
    "精准监督，深挖症结破“堵点”",
    "标本兼治，形成合力解“难点”",
    "政策加码，{topic}提速",
    "{industry}需求持续释放",
    "龙头企业加速布局",
    "什么是{industry}概念",
    "这些公司有{industry}产品",
    "机构怎么看",
    "多措并举稳增长",
)
#: title templates
TITLES = (
    "{region}{topic}取得新进展",
    "{company}：{event}",
    "{month}月份{indicator}同比增长{pct}%",
    "{industry}板块走强 {company}涨超{small}%",
    "多地密集出台新政 {topic}按下“加速键”",
    "{region}精准施策护航{topic}",
    "{org}：{month}月份{indicator}保持增长",
    "{industry}赛道持续升温 产业链公司加速扩产",
    "聚焦{topic} {region}出台{small}条措施",
    "{company}拟投资{n}亿元扩产 加码{industry}业务",
)
#: site notices: (id, title, body paragraphs)
NOTICES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (
        "maintenance",
        "网站维护通知",
        (
            "本站将于今晚进行例行维护，期间部分页面可能无法访问。",
            "维护完成后各栏目将恢复正常更新，给您带来的不便敬请谅解。",
        ),
    ),
    (
        "archive-policy",
        "关于消息归档的说明",
        (
            "本站消息时效性为三天，三天前的消息将自动归档。",
            "如需查看历史消息，请访问归档仓库。",
        ),
    ),
    (
        "feed-update",
        "订阅源更新说明",
        ("本站订阅源已更新，现可通过feed.xml订阅最新消息。", "欢迎继续关注金融消息。"),
    ),
    (
        "new-columns",
        "新增栏目公告",
        ("本站新增多家媒体栏目，首页按媒体分类展示最新消息。",),
    ),
)
